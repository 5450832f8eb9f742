request_for <- function(input_type, inputs, id = 5) {
  Rclipper:::decode_from_frontend(
    Rclipper:::encode_predict_request(id, Rclipper:::INPUT_TYPE_CODES[[input_type]], inputs))
}
lengths_fn <- function(inputs) lapply(inputs, function(input) as.character(length(input)))
ints <- function(...) writeBin(as.integer(c(...)), raw(), size = 4, endian = "little")

test_that("a batch is answered with one output per input", {
  frames <- Rclipper:::answer_request(request_for("ints", list(ints(1, 2, 3), ints(7))), "ints", "integer", lengths_fn)
  reply <- Rclipper:::decode_from_container(frames)
  expect_identical(reply$kind, "response")
  expect_identical(reply$message_id, 5)
  expect_identical(reply$outputs, c("3", "1"))
})

test_that("errors, wrong counts, bad inputs and type mismatches are error replies", {
  error_of <- function(frames) Rclipper:::decode_from_container(frames)
  quietly <- function(expr) { value <- NULL; capture.output(value <- expr, type = "message"); value }
  failing <- function(inputs) stop("no model for you")
  e <- quietly(error_of(Rclipper:::answer_request(request_for("ints", list(ints(1))), "ints", "integer", failing)))
  expect_identical(e$kind, "error")
  expect_identical(e$error_kind, Rclipper:::ERROR_MODEL_EXCEPTION)
  expect_match(e$message, "no model for you")

  short <- function(inputs) list("1")
  e <- quietly(error_of(Rclipper:::answer_request(request_for("ints", list(ints(1), ints(2))), "ints", "integer", short)))
  expect_identical(e$error_kind, Rclipper:::ERROR_BAD_OUTPUT)
  expect_match(e$message, "returned 1 outputs for 2 inputs")

  e <- quietly(error_of(Rclipper:::answer_request(request_for("ints", list(as.raw(1:3))), "ints", "integer", lengths_fn)))
  expect_identical(e$error_kind, Rclipper:::ERROR_BAD_INPUT)

  e <- quietly(error_of(Rclipper:::answer_request(request_for("doubles", list(ints(1, 2))), "ints", "integer", lengths_fn)))
  expect_identical(e$error_kind, Rclipper:::ERROR_BAD_INPUT)
  expect_match(e$message, "does not match")
})

test_that("settings come from the CLIPPER_* environment with the Python runtime's defaults", {
  s <- Rclipper:::container_settings(list(CLIPPER_MODEL_NAME = "m", CLIPPER_MODEL_VERSION = "1",
                                          CLIPPER_MODEL_PATH = "/model", CLIPPER_INPUT_TYPE = "Integers"))
  expect_identical(s[c("clipper_ip", "clipper_port", "input_type", "ready_file", "poll_ms", "activity_timeout_ms")],
                   list(clipper_ip = "127.0.0.1", clipper_port = 7000L, input_type = "ints",
                        ready_file = "/model_is_ready.check", poll_ms = 5000L, activity_timeout_ms = 30000L))
  expect_error(Rclipper:::container_settings(list(CLIPPER_MODEL_VERSION = "1", CLIPPER_MODEL_PATH = "/m")),
               "CLIPPER_MODEL_NAME environment variable must be set")
  expect_error(Rclipper:::container_settings(list(CLIPPER_MODEL_NAME = "m", CLIPPER_MODEL_VERSION = "1",
                                                  CLIPPER_MODEL_PATH = "/m", CLIPPER_PORT = "70000")),
               "CLIPPER_PORT must be between")
})
