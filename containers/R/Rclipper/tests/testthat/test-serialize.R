# What a model directory holds must be enough in a fresh R process: run it there.

run_in_fresh_r <- function(model_dir, input_expr) {
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "model <- Rclipper::load_model(commandArgs(TRUE)[1])",
    sprintf("out <- model$prediction_function(list(%s))", input_expr),
    "cat(Rclipper:::encode_outputs(out, 1L), sep = '\\n')"
  ), script)
  rscript <- file.path(R.home("bin"), "Rscript")
  suppressWarnings(system2(rscript, c("--vanilla", script, shQuote(model_dir)), stdout = TRUE, stderr = TRUE))
}

test_that("globals the function refers to are captured by value, recursively", {
  env <- new.env(parent = globalenv())
  # Defined in the global environment, as a user's script would.
  assign("scale_factor", 10, envir = globalenv())
  assign("helper", function(x) sum(x) * scale_factor, envir = globalenv())
  on.exit(rm("scale_factor", "helper", envir = globalenv()), add = TRUE)
  fn <- function(inputs) lapply(inputs, function(x) as.character(helper(x)))
  environment(fn) <- globalenv()
  globals <- Rclipper:::capture_globals(fn)
  expect_setequal(names(globals), c("helper", "scale_factor"))

  dir <- tempfile("model-")
  serialize_model(fn, c(1, 2), dir)
  expect_identical(run_in_fresh_r(dir, "c(1, 2, 3)"), "60")
})

test_that("a closure's own environment travels with it", {
  make_fn <- function(offset) {
    add <- function(x) x + offset
    function(inputs) lapply(inputs, function(x) as.character(add(length(x))))
  }
  dir <- tempfile("model-")
  serialize_model(make_fn(100), 1L, dir)
  expect_identical(run_in_fresh_r(dir, "1:5"), "105")
})

test_that("attached packages are recorded with their versions and attached at load", {
  suppressPackageStartupMessages(library(tools))
  on.exit(detach("package:tools"), add = TRUE)
  fn <- function(inputs) lapply(inputs, function(x) file_ext(x))  # tools::file_ext, unqualified
  environment(fn) <- globalenv()
  dir <- tempfile("model-")
  serialize_model(fn, "a.txt", dir)
  model <- readRDS(file.path(dir, "model.rds"))
  expect_true("tools" %in% names(model$packages))
  expect_identical(model$packages[["tools"]], as.character(packageVersion("tools")))
  expect_identical(run_in_fresh_r(dir, "'archive.tar.gz'"), "gz")
})

test_that("a model needing a package that is not installed fails with the package named", {
  dir <- tempfile("model-")
  serialize_model(function(inputs) inputs, 1L, dir)
  model <- readRDS(file.path(dir, "model.rds"))
  model$packages <- c(notapackage = "9.9")
  saveRDS(model, file.path(dir, "model.rds"))
  expect_error(load_model(dir, envir = new.env()), "notapackage \\(9.9\\)")
})

test_that("the model records its input type and class", {
  dir <- tempfile("model-")
  serialize_model(function(inputs) inputs, mtcars, dir)
  model <- readRDS(file.path(dir, "model.rds"))
  expect_identical(model[c("input_type", "input_class")], list(input_type = "strings", input_class = "data.frame"))
})
