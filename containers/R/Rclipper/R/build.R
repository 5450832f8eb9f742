# build_model: validate, serialise, build the model image (or keep a local model directory)
# and print the line that deploys it from Python.

# Model names and versions: DNS-1123 subdomains, the rule clipper_admin checks.
NAME_PATTERN <- "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
R_BASE_IMAGE_STEM <- "r-container"
LOCAL_RUNTIME_IMAGE <- "r-container"

#' Build a Clipper model from an R prediction function
#'
#' @param model_name character vector of length 1. The name to assign to the model image.
#' @param model_version character vector of length 1. The version tag to assign to the model image.
#' @param prediction_function function. This should accept a type-homogeneous list of
#'   inputs and return a list of outputs of the same length. If the elements of the output
#'   list are not character vectors of length 1, they will be converted to a serialized
#'   string representation via 'jsonlite'.
#' @param sample_input For a prediction function that accepts a list of inputs of type X,
#'   this should be a single input of type X. This is used to validate the compatibility of
#'   the function with Clipper and to determine the Clipper data type (bytes, ints, strings,
#'   etc) to associate with the model.
#' @param model_registry character vector of length 1. The name of the image registry to
#'   which to upload the model image. If NULL, the image will not be uploaded to a registry.
#' @param local logical. TRUE: build no image; write the model directory (\code{model_dir})
#'   and print the \code{conn.build_and_deploy_model(..., "r-container", ...)} line that
#'   serves it through a local cluster (\code{LocalContainerManager}) as a local R process.
#' @param model_dir where the serialised model goes: by default a temporary directory when
#'   building an image, \code{~/.clipper/r-models/<name>_<version>} (under
#'   \code{$CLIPPER_HOME} when set) when \code{local = TRUE}.
#' @param base_image the R model-container image to build from; by default
#'   \code{clipper/r-container:<Rclipper version>}, built from the Clipper repository's
#'   \code{dockerfiles/RContainerDockerfile} (with \code{python3 -m clipper_admin.docker.images})
#'   when the engine does not have it.
#' @return the image name (or, with \code{local = TRUE}, the model directory), invisibly.
#' @export
build_model <- function(model_name, model_version, prediction_function, sample_input,
                        model_registry = NULL, local = FALSE, model_dir = NULL, base_image = NULL) {
  model_name <- check_name(model_name, "model_name")
  model_version <- check_name(model_version, "model_version")
  if (!is.function(prediction_function)) stop("prediction_function must be a function")
  input_type <- infer_input_type(sample_input)
  validate_prediction_function(prediction_function, sample_input)

  if (is.null(model_dir)) {
    model_dir <- if (isTRUE(local)) default_local_model_dir(model_name, model_version)
                 else file.path(tempfile("rclipper-build-"), "model")
  }
  if (isTRUE(local) && dir.exists(model_dir)) unlink(model_dir, recursive = TRUE)
  print(sprintf("Serialized list of dependent libraries: %s", paste(.packages(), collapse = ": ")))
  serialize_model(prediction_function, sample_input, model_dir)
  print("Serialized model function!")

  if (isTRUE(local)) {
    model_dir <- normalizePath(model_dir)
    print("Done!")
    cat("To deploy this model, execute the following command from a connected ClipperConnection object `conn`",
        " (a LocalContainerManager cluster; the model runs as a local R process):\n",
        sprintf("conn.build_and_deploy_model(\"%s\", \"%s\", \"%s\", \"%s\", \"%s\", num_replicas=<num_container_replicas>)\n",
                model_name, model_version, input_type, model_dir, LOCAL_RUNTIME_IMAGE), sep = "")
    print_bytes_hint(input_type, sample_input)
    return(invisible(model_dir))
  }

  image <- sprintf("%s:%s", model_name, model_version)
  if (!is.null(model_registry)) image <- sprintf("%s/%s", model_registry, image)
  base_image <- base_image %||% default_base_image()
  ensure_base_image(base_image)
  build_image(image, base_image, model_dir)
  if (!is.null(model_registry)) docker("push", image)
  unlink(dirname(model_dir), recursive = TRUE)
  print("Done!")
  cat("To deploy this model, execute the following command from a connected ClipperConnection object `conn`:\n",
      sprintf("conn.deploy_model(\"%s\", \"%s\", \"%s\", \"%s\", num_replicas=<num_container_replicas>)\n",
              model_name, model_version, input_type, image), sep = "")
  print_bytes_hint(input_type, sample_input)
  invisible(image)
}

# Byte inputs are queried as base64 text; show the sample input so.
print_bytes_hint <- function(input_type, sample_input) {
  if (input_type != "bytes") return(invisible())
  cat(sprintf("Query it with base64 text, e.g. {\"input\": \"%s\"} for the sample input.\n",
              base64enc::base64encode(sample_input)))
}

check_name <- function(value, what) {
  if (length(value) != 1L || is.na(value)) stop(sprintf("%s must be a single value", what))
  value <- as.character(value)
  if (nchar(value) > 253L || !grepl(NAME_PATTERN, value)) {
    stop(sprintf(paste0("%s '%s' is not valid: use lowercase letters, digits, '-' and '.', ",
                        "starting and ending with a letter or digit (at most 253 characters)"), what, value))
  }
  value
}

#' Call the function on list(sample_input) as the container would, or stop with the reason.
#' @noRd
validate_prediction_function <- function(prediction_function, sample_input) {
  klass <- input_class(sample_input)
  if (klass %in% JSON_INPUT_CLASSES) {
    # The container receives the JSON text parsed back; validate on exactly that.
    sample_input <- from_json_input(as.character(jsonlite::toJSON(sample_input, digits = NA)), klass)
  }
  output <- tryCatch(prediction_function(list(sample_input)), error = function(e) {
    stop(sprintf("Encountered an error while evaluating the prediction function on the sample input: %s",
                 conditionMessage(e)), call. = FALSE)
  })
  tryCatch(encode_outputs(output, 1L), bad_model_output = function(e) {
    stop(sprintf("The prediction function is not compatible with Clipper: given a list of 1 input, %s",
                 sub("^the prediction function ", "it ", conditionMessage(e))), call. = FALSE)
  })
  invisible(TRUE)
}

default_local_model_dir <- function(model_name, model_version) {
  home <- Sys.getenv("CLIPPER_HOME", "")
  if (!nzchar(home)) home <- file.path(path.expand("~"), ".clipper")
  file.path(home, "r-models", sprintf("%s_%s", model_name, model_version))
}

default_base_image <- function() {
  registry <- Sys.getenv("CLIPPER_REGISTRY", "")
  if (!nzchar(registry)) registry <- "clipper"
  sprintf("%s/%s:%s", registry, R_BASE_IMAGE_STEM, utils::packageVersion("Rclipper"))
}

docker <- function(...) {
  args <- c(...)
  status <- system2("docker", shQuote(args))
  if (!identical(as.integer(status), 0L)) stop(sprintf("docker %s failed (exit status %s)", args[1], status))
  invisible(TRUE)
}

image_exists <- function(image) {
  status <- suppressWarnings(system2("docker", c("image", "inspect", shQuote(image)), stdout = FALSE, stderr = FALSE))
  identical(as.integer(status), 0L)
}

# The R base image comes from the Clipper repository's dockerfiles/; clipper_admin's image
# builder knows where that is (CLIPPER_SOURCE_DIR or its own checkout).
ensure_base_image <- function(base_image) {
  if (image_exists(base_image)) return(invisible())
  python <- Sys.getenv("CLIPPER_PYTHON", "python3")
  message(sprintf("Building the R base image %s with %s -m clipper_admin.docker.images", base_image, python))
  status <- system2(python, c("-m", "clipper_admin.docker.images", "--network", "host", R_BASE_IMAGE_STEM))
  if (!identical(as.integer(status), 0L) || !image_exists(base_image)) {
    stop(sprintf(paste0("The R base image %s is missing and could not be built (see the output above; ",
                        "clipper_admin builds <registry>/%s:<its version>)"), base_image, R_BASE_IMAGE_STEM))
  }
}

build_image <- function(image, base_image, model_dir) {
  context <- dirname(model_dir)
  writeLines(c(sprintf("FROM %s", base_image), "COPY model /model/"), file.path(context, "Dockerfile"))
  docker("build", "--network", "host", "-t", image, context)
}
