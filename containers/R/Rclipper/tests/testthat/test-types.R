test_that("the input type is inferred from the sample input as the documentation's table says", {
  expect_identical(infer_input_type(as.raw(1:3)), "bytes")
  expect_identical(infer_input_type(as.integer(c(1, 2, 3))), "ints")
  expect_identical(infer_input_type(c(1, 2.5)), "doubles")
  expect_identical(infer_input_type("input text"), "strings")
  expect_identical(infer_input_type(mtcars), "strings")
  expect_identical(infer_input_type(diag(3)), "strings")
  expect_identical(infer_input_type(array(1:4)), "strings")
  expect_identical(infer_input_type(list(1:4)), "strings")
  expect_error(infer_input_type(TRUE), "logical is not supported")
  expect_error(infer_input_type(factor("a")), "factor")
})

test_that("input type aliases follow the original's parser", {
  expect_identical(Rclipper:::parse_input_type(" Integers "), "ints")
  expect_identical(Rclipper:::parse_input_type("s"), "strings")
  expect_identical(Rclipper:::parse_input_type("quaternions"), NA_character_)
})

test_that("payloads decode to raw, integer, numeric and character vectors", {
  decode <- Rclipper:::decode_input
  expect_identical(decode("bytes", as.raw(c(0, 255))), as.raw(c(0, 255)))
  expect_identical(decode("ints", writeBin(c(1L, -2L), raw(), size = 4, endian = "little")), c(1L, -2L))
  expect_identical(decode("doubles", writeBin(c(1.5, -2), raw(), size = 8, endian = "little")), c(1.5, -2))
  expect_identical(decode("floats", writeBin(0.5, raw(), size = 4, endian = "little")), 0.5)
  expect_identical(decode("strings", charToRaw(enc2utf8("h\u00e9"))), enc2utf8("h\u00e9"))
  expect_error(decode("ints", as.raw(1:3)), "not a whole number")
  expect_error(decode("strings", as.raw(c(0xff, 0xfe))), "UTF-8")
})

test_that("JSON inputs are parsed back into the sample input's class", {
  df <- Rclipper:::decode_input("strings", charToRaw(as.character(jsonlite::toJSON(mtcars))), "data.frame")
  expect_s3_class(df, "data.frame")
  expect_identical(dim(df), dim(mtcars))
  m <- Rclipper:::decode_input("strings", charToRaw(as.character(jsonlite::toJSON(diag(3)))), "matrix")
  expect_identical(dim(m), c(3L, 3L))
  l <- Rclipper:::decode_input("strings", charToRaw(as.character(jsonlite::toJSON(list(1:4)))), "list")
  expect_identical(l, list(1:4))
})

test_that("length-1 strings go back as they are, anything else as JSON", {
  encode <- Rclipper:::encode_outputs
  expect_identical(encode(list("a", "b"), 2L), c("a", "b"))
  expect_identical(encode(c("a", "b"), 2L), c("a", "b"))
  expect_identical(encode(list(4L, list(x = 1)), 2L), c("[4]", "{\"x\":[1]}"))
  expect_identical(encode(list(c("a", "b")), 1L), "[\"a\",\"b\"]")
  expect_error(encode(list("a"), 2L), "returned 1 outputs for 2 inputs", class = "bad_model_output")
  expect_error(encode(mtcars, 32L), "data.frame", class = "bad_model_output")
  expect_error(encode(function(x) x, 1L), class = "bad_model_output")
})
