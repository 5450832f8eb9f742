pred_fn <- function(inputs) lapply(inputs, function(input) as.character(length(input)))

test_that("build_model(local = TRUE) writes the model and prints the deploy line", {
  dir <- tempfile("local-model-")
  out <- capture.output(build_model("test-model", "1", pred_fn, sample_input = as.integer(c(1, 2, 3)),
                                    local = TRUE, model_dir = dir))
  expect_true(file.exists(file.path(dir, "model.rds")))
  expect_true(any(grepl("Serialized model function!", out, fixed = TRUE)))
  expect_true(any(grepl(sprintf("conn.build_and_deploy_model(\"test-model\", \"1\", \"ints\", \"%s\", \"r-container\"",
                                normalizePath(dir)), out, fixed = TRUE)))
})

test_that("a function that fails or returns the wrong shape is refused before anything is built", {
  dir <- tempfile("local-model-")
  expect_error(build_model("m", "1", function(inputs) stop("broken"), 1L, local = TRUE, model_dir = dir),
               "error while evaluating the prediction function on the sample input: broken")
  expect_error(build_model("m", "1", function(inputs) list(), 1L, local = TRUE, model_dir = dir),
               "returned 0 outputs for 1 inputs")
  expect_error(build_model("m", "1", function(inputs) mtcars, 1L, local = TRUE, model_dir = dir),
               "returned a data.frame")
  expect_false(dir.exists(dir))
})

test_that("names must be DNS-1123 subdomains, as clipper_admin checks them", {
  expect_error(build_model("Bad_Name", "1", pred_fn, 1L, local = TRUE), "model_name 'Bad_Name' is not valid")
  expect_error(build_model("m", "1:2", pred_fn, 1L, local = TRUE), "model_version '1:2' is not valid")
})

test_that("data-frame models are validated on the JSON round trip the container performs", {
  dir <- tempfile("local-model-")
  needs_factor <- function(inputs) lapply(inputs, function(df) if (is.factor(df$x)) "ok" else stop("not a factor"))
  expect_error(build_model("m", "1", needs_factor, data.frame(x = factor("a")), local = TRUE, model_dir = dir),
               "not a factor")
})

test_that("a bytes model's build shows its sample input as the base64 text to query with", {
  out <- capture.output(build_model("m", "1", pred_fn, charToRaw("clipper"), local = TRUE,
                                    model_dir = tempfile("local-model-")))
  expect_true(any(grepl("{\"input\": \"Y2xpcHBlcg==\"}", out, fixed = TRUE)))
})
