# Serialising a prediction function with what it needs, using base R only.
#
# R's serialize() writes a closure's environment by value, up to (not including) the global
# environment and package namespaces, which it writes as references. So captured here:
#   * the function and every environment it closes over (serialize does that),
#   * the global variables it refers to, found by walking its code (and, for global
#     functions it calls, their code, recursively), stored by value,
#   * the packages attached when it was built (name and version), attached again at load.
# Not captured: package code itself (a package must be installed where the model runs),
# files the function reads, options(), random-number state, and globals reached only
# through get()/eval() of computed names.

MODEL_FILE <- "model.rds"
MODEL_FORMAT <- 1L
# Attached in every R session; never recorded.
DEFAULT_PACKAGES <- c("base", "methods", "datasets", "utils", "grDevices", "graphics", "stats")

#' Global variables a function refers to, by value (a named list).
#' @noRd
capture_globals <- function(fn, envir = globalenv()) {
  found <- list()
  pending <- list(fn)
  while (length(pending) > 0L) {
    current <- pending[[1]]
    pending <- pending[-1]
    for (name in referenced_names(current)) {
      if (name %in% names(found) || !exists(name, envir = envir, inherits = FALSE)) next
      value <- get(name, envir = envir, inherits = FALSE)
      found[[name]] <- value
      if (is.function(value)) pending <- c(pending, list(value))
    }
  }
  found
}

# Names used in a closure's body and default arguments, and in the closures of its
# environments below the global one (a function factory's helpers).
referenced_names <- function(fn) {
  if (!is.function(fn) || is.primitive(fn)) return(character(0))
  names <- c(all.names(body(fn)), unlist(lapply(as.list(formals(fn)), all_names_of)))
  env <- environment(fn)
  seen <- list()
  while (!is.null(env) && !identical(env, globalenv()) && !identical(env, emptyenv()) &&
         !isNamespace(env) && !identical(env, baseenv())) {
    if (any(vapply(seen, identical, logical(1), env))) break
    seen <- c(seen, list(env))
    for (value in mget(ls(env, all.names = TRUE), envir = env)) {
      if (is.function(value) && !is.primitive(value)) names <- c(names, all.names(body(value)))
    }
    env <- parent.env(env)
  }
  unique(setdiff(names, names(formals(fn))))
}

all_names_of <- function(expr) {
  if (is.language(expr)) all.names(expr) else character(0)
}

#' Attached packages (not R's defaults) with their versions, in search-path order.
#' @noRd
attached_packages <- function() {
  packages <- setdiff(.packages(), DEFAULT_PACKAGES)
  versions <- vapply(packages, function(p) as.character(utils::packageVersion(p)), character(1))
  stats::setNames(versions, packages)
}

#' Serialise a prediction function into a model directory
#'
#' Writes \code{model.rds} holding the function, the globals it refers to, the attached
#' packages, the input type and class, and the sample input.
#' @param prediction_function the function.
#' @param sample_input one input (see \code{infer_input_type}).
#' @param model_dir directory to write (created when missing).
#' @return the path of the written file, invisibly.
#' @export
serialize_model <- function(prediction_function, sample_input, model_dir) {
  stopifnot(is.function(prediction_function))
  dir.create(model_dir, recursive = TRUE, showWarnings = FALSE)
  model <- list(
    format = MODEL_FORMAT,
    prediction_function = prediction_function,
    globals = capture_globals(prediction_function),
    packages = attached_packages(),
    input_type = infer_input_type(sample_input),
    input_class = input_class(sample_input),
    sample_input = sample_input,
    r_version = as.character(getRversion())
  )
  path <- file.path(model_dir, MODEL_FILE)
  saveRDS(model, path)
  invisible(path)
}

#' Load a model directory written by serialize_model
#'
#' Attaches the recorded packages (an error names any that is not installed) and puts the
#' captured globals into \code{envir} (the global environment, where the function's own
#' references resolve).
#' @param model_dir the directory.
#' @param envir where the globals go.
#' @return the model: a list with \code{prediction_function}, \code{input_type},
#'   \code{input_class}, \code{packages}.
#' @export
load_model <- function(model_dir, envir = globalenv()) {
  path <- file.path(model_dir, MODEL_FILE)
  if (!file.exists(path)) stop(sprintf("no %s in the model directory %s", MODEL_FILE, model_dir))
  model <- readRDS(path)
  if (!identical(model$format, MODEL_FORMAT)) stop(sprintf("%s has an unknown format", path))
  missing <- names(model$packages)[!vapply(names(model$packages), requireNamespace, logical(1), quietly = TRUE)]
  if (length(missing) > 0L) {
    stop(sprintf("the model needs R packages that are not installed here: %s",
                 paste(sprintf("%s (%s)", missing, model$packages[missing]), collapse = ", ")))
  }
  # Attach in reverse so the search order matches the one at build time.
  for (package in rev(names(model$packages))) {
    suppressPackageStartupMessages(library(package, character.only = TRUE))
  }
  for (name in names(model$globals)) assign(name, model$globals[[name]], envir = envir)
  model
}
