# Clipper input types on the R side: inferring them from a sample input, turning request
# payloads into R objects, and model outputs into the strings the frontend returns.

# Wire codes, as clipper_core.rpc.messages.InputType.
INPUT_TYPE_CODES <- c(bytes = 0L, ints = 1L, floats = 2L, doubles = 3L, strings = 4L)

# The aliases the original's parse_input_type accepts (matched after trimming and lowercasing).
INPUT_TYPE_ALIASES <- list(
  bytes = c("bytes", "byte", "b"),
  ints = c("integers", "ints", "integer", "int", "i"),
  floats = c("floats", "float", "f"),
  doubles = c("doubles", "double", "d"),
  strings = c("strings", "string", "str", "strs", "s")
)

# Inputs of these classes travel as JSON strings; the container parses them back.
JSON_INPUT_CLASSES <- c("data.frame", "matrix", "array", "list")

#' Canonical input type name ("ints", ...) of an alias; NA when unknown.
#' @noRd
parse_input_type <- function(name) {
  key <- tolower(trimws(as.character(name)))
  for (type in names(INPUT_TYPE_ALIASES)) {
    if (key %in% INPUT_TYPE_ALIASES[[type]]) return(type)
  }
  NA_character_
}

#' The R class an input arrives as: one of "raw", "integer", "numeric", "character",
#' "data.frame", "matrix", "array", "list".
#' @noRd
input_class <- function(sample_input) {
  if (is.data.frame(sample_input)) return("data.frame")
  if (is.matrix(sample_input)) return("matrix")
  if (is.array(sample_input)) return("array")
  if (is.list(sample_input)) return("list")
  if (is.factor(sample_input)) stop("Function input of class factor is not supported; use a character vector")
  if (is.raw(sample_input)) return("raw")
  if (is.integer(sample_input)) return("integer")
  if (is.double(sample_input)) return("numeric")
  if (is.character(sample_input)) return("character")
  stop(sprintf("Function input type of class %s is not supported", paste(class(sample_input), collapse = "/")))
}

#' Clipper input type for a prediction function's sample input
#'
#' Raw vector -> "bytes", integer vector -> "ints", numeric vector -> "doubles", character
#' vector -> "strings"; data frames, matrices, arrays and lists -> "strings" (they are queried
#' as JSON text, e.g. \code{jsonlite::toJSON(mtcars)}).
#' @param sample_input one input of the kind the function receives in its list.
#' @return the input type name, e.g. "ints".
#' @export
infer_input_type <- function(sample_input) {
  switch(input_class(sample_input),
         raw = "bytes", integer = "ints", numeric = "doubles", "strings")
}

#' One request payload (raw vector) as the R object the function receives.
#' @noRd
decode_input <- function(input_type, payload, klass = NULL) {
  switch(input_type,
    bytes = payload,
    ints = decode_numeric(payload, "integer", 4L),
    floats = decode_numeric(payload, "double", 4L),
    doubles = decode_numeric(payload, "double", 8L),
    strings = decode_string(payload, klass),
    stop("cannot decode inputs of type ", input_type)
  )
}

decode_numeric <- function(payload, what, size) {
  if (length(payload) %% size != 0L) {
    stop(sprintf("an input of %d bytes is not a whole number of %d-byte elements", length(payload), size))
  }
  readBin(payload, what, n = length(payload) %/% size, size = size, endian = "little")
}

decode_string <- function(payload, klass) {
  if (any(payload == as.raw(0))) stop("a string input contains a NUL byte")
  text <- rawToChar(payload)
  if (!validUTF8(text)) stop("a string input is not valid UTF-8")
  Encoding(text) <- "UTF-8"
  if (is.null(klass) || !(klass %in% JSON_INPUT_CLASSES)) return(text)
  from_json_input(text, klass)
}

#' JSON text of a data frame, matrix, array or list -> that R object again.
#' @noRd
from_json_input <- function(text, klass) {
  switch(klass,
    data.frame = as.data.frame(jsonlite::fromJSON(text, simplifyDataFrame = TRUE)),
    matrix = as.matrix(jsonlite::fromJSON(text, simplifyMatrix = TRUE)),
    array = as.array(jsonlite::fromJSON(text)),
    list = jsonlite::fromJSON(text, simplifyDataFrame = FALSE, simplifyMatrix = FALSE),
    text
  )
}

#' A function's result for `count` inputs as `count` strings.
#'
#' The result must be a list (or an atomic vector) of length `count`. A length-1 character
#' element is returned as it is; anything else as its jsonlite::toJSON text. Signals an
#' error of class "bad_model_output" otherwise.
#' @noRd
encode_outputs <- function(outputs, count) {
  if (is.data.frame(outputs) || !(is.list(outputs) || is.atomic(outputs)) || !is.null(dim(outputs))) {
    bad_output(sprintf("the prediction function returned a %s, expected a list of %d outputs",
                       paste(class(outputs), collapse = "/"), count))
  }
  if (length(outputs) != count) {
    bad_output(sprintf("the prediction function returned %d outputs for %d inputs", length(outputs), count))
  }
  vapply(seq_len(count), function(i) output_text(outputs[[i]]), character(1), USE.NAMES = FALSE)
}

output_text <- function(output) {
  if (is.character(output) && length(output) == 1L && is.null(dim(output)) && !is.na(output)) {
    return(enc2utf8(output))
  }
  text <- tryCatch(jsonlite::toJSON(output, digits = NA),
                   error = function(e) bad_output(paste("an output cannot be written as JSON:", conditionMessage(e))))
  enc2utf8(as.character(text))
}

bad_output <- function(text) {
  stop(structure(class = c("bad_model_output", "error", "condition"), list(message = text, call = NULL)))
}
