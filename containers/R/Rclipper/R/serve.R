# The R model container: settings from the CLIPPER_* environment (the contract of
# containers/python/settings.py), the model loaded from CLIPPER_MODEL_PATH, then one ZeroMQ
# DEALER session after another (original-core 1.6, as containers/python/server.py):
# connect, send a heartbeat, poll. Any inbound message marks the session connected. A poll
# timeout while connected sends a heartbeat, unless nothing came for the activity timeout,
# in which case the socket is closed and a new session (new routing identity) starts.
# Errors from the function never end the loop: they are answered with the error extension.
# Stopping (SIGINT, an R interrupt) drains as containers/python/server.py does: the draining
# message once, every request still answered, exit when the frontend lets the container go
# (an unprompted RequestContainerMetadata) or after DRAIN_QUIET_S without a request; a
# container no frontend has spoken to exits at once.

DEFAULT_CLIPPER_IP <- "127.0.0.1"
DEFAULT_CLIPPER_PORT <- 7000L
DEFAULT_READY_FILE <- "/model_is_ready.check"
DEFAULT_POLL_MS <- 5000L
DEFAULT_ACTIVITY_TIMEOUT_MS <- 30000L
# An error text can embed a whole input; the frontend only needs the gist.
MAX_ERROR_MESSAGE_CHARS <- 4096L
# While draining: heartbeat often (each answer says whether the frontend still holds this
# container); exit after this long without a request (an original frontend ignores draining).
DRAIN_HEARTBEAT_MS <- 50L
DRAIN_QUIET_S <- 1.0

log_line <- function(level, ...) {
  cat(sprintf("%s %s Rclipper: %s\n", format(Sys.time(), "%Y-%m-%d %H:%M:%OS3"), level, paste0(...)),
      file = stderr())
}

config_error <- function(text) {
  stop(structure(class = c("container_config_error", "error", "condition"),
                 list(message = text, call = NULL)))
}

env_int <- function(env, key, default, minimum, maximum = Inf) {
  raw <- trimws(env[[key]] %||% "")
  if (!nzchar(raw)) return(default)
  value <- suppressWarnings(as.numeric(raw))
  if (is.na(value) || value != floor(value)) config_error(sprintf("%s must be an integer, got '%s'", key, raw))
  if (value < minimum || value > maximum) {
    config_error(sprintf("%s must be between %s and %s, got %s", key, minimum, maximum, raw))
  }
  as.integer(value)
}

`%||%` <- function(a, b) if (is.null(a) || is.na(a)) b else a

#' Container settings from the environment (a named character vector or list).
#' @noRd
container_settings <- function(env = as.list(Sys.getenv())) {
  required <- function(key) {
    value <- env[[key]] %||% ""
    if (!nzchar(value)) config_error(sprintf("%s environment variable must be set", key))
    value
  }
  settings <- list(model_name = required("CLIPPER_MODEL_NAME"),
                   model_version = required("CLIPPER_MODEL_VERSION"),
                   model_path = required("CLIPPER_MODEL_PATH"))
  raw_type <- env[["CLIPPER_INPUT_TYPE"]] %||% ""
  settings$input_type <- if (nzchar(raw_type)) parse_input_type(raw_type) else NA_character_
  if (nzchar(raw_type) && is.na(settings$input_type)) {
    config_error(sprintf("CLIPPER_INPUT_TYPE '%s' is not a valid input type (use one of %s)",
                         raw_type, paste(names(INPUT_TYPE_CODES), collapse = ", ")))
  }
  settings$clipper_ip <- env[["CLIPPER_IP"]] %||% ""
  if (!nzchar(settings$clipper_ip)) settings$clipper_ip <- DEFAULT_CLIPPER_IP
  settings$clipper_port <- env_int(env, "CLIPPER_PORT", DEFAULT_CLIPPER_PORT, 1, 65535)
  settings$ready_file <- env[["CLIPPER_READY_FILE"]] %||% DEFAULT_READY_FILE
  settings$poll_ms <- env_int(env, "CLIPPER_RPC_POLL_MS", DEFAULT_POLL_MS, 1)
  settings$activity_timeout_ms <- env_int(env, "CLIPPER_RPC_ACTIVITY_TIMEOUT_MS", DEFAULT_ACTIVITY_TIMEOUT_MS, 1)
  settings
}

#' Reply frames for one decoded predict request (pure; no sockets).
#' @noRd
answer_request <- function(request, input_type, input_class, prediction_function) {
  message_id <- request$message_id_raw
  error_reply <- function(kind, text) {
    log_line("ERROR", sprintf("request %.0f: %s", request$message_id, text))
    if (nchar(text) > MAX_ERROR_MESSAGE_CHARS) text <- paste0(substr(text, 1L, MAX_ERROR_MESSAGE_CHARS - 3L), "...")
    encode_container_error(message_id, kind, text)
  }
  expected <- INPUT_TYPE_CODES[[input_type]]
  if (request$input_type != expected) {
    actual <- names(INPUT_TYPE_CODES)[request$input_type + 1L]
    return(error_reply(ERROR_BAD_INPUT, sprintf(
      "request input type %s does not match the container input type %s", actual, input_type)))
  }
  count <- length(request$inputs)
  if (count == 0L) return(encode_predict_response(message_id, character(0)))
  inputs <- tryCatch(lapply(request$inputs, function(p) decode_input(input_type, p, input_class)),
                     error = function(e) e)
  if (inherits(inputs, "error")) return(error_reply(ERROR_BAD_INPUT, conditionMessage(inputs)))
  result <- call_model(prediction_function, inputs)
  if (inherits(result, "error")) {
    return(error_reply(ERROR_MODEL_EXCEPTION, paste("R error:", conditionMessage(result))))
  }
  outputs <- tryCatch(encode_outputs(result, count), error = function(e) e)
  if (inherits(outputs, "error")) return(error_reply(ERROR_BAD_OUTPUT, conditionMessage(outputs)))
  encode_predict_response(message_id, outputs)
}

# The function's result or its error. An interrupt (the stop signal) during the call is
# remembered as a drain request and the call is made again: R cannot resume the interrupted
# evaluation, and the batch in hand must still be answered.
call_model <- function(prediction_function, inputs) {
  repeat {
    result <- tryCatch(list(tryCatch(prediction_function(inputs), error = function(e) e)),
                       interrupt = function(e) NULL)
    if (!is.null(result)) return(result[[1]])
    log_line("INFO", "stop requested during a prediction; finishing the batch first")
    serving_state$drain_requested <- TRUE
  }
}

serving_state <- new.env(parent = emptyenv())
serving_state$drain_requested <- FALSE

#' Serve a model as a Clipper model container
#'
#' Reads \code{CLIPPER_MODEL_NAME}, \code{CLIPPER_MODEL_VERSION}, \code{CLIPPER_MODEL_PATH}
#' (required), \code{CLIPPER_IP} (default 127.0.0.1), \code{CLIPPER_PORT} (7000),
#' \code{CLIPPER_INPUT_TYPE} (default: the type the model was built with),
#' \code{CLIPPER_READY_FILE} (/model_is_ready.check), \code{CLIPPER_RPC_POLL_MS} (5000) and
#' \code{CLIPPER_RPC_ACTIVITY_TIMEOUT_MS} (30000); loads the model and serves it until the
#' process is interrupted (SIGINT), which drains first. A bad setting or model prints one
#' \code{ERROR:} line and quits with status 1.
#' @export
serve_model <- function() {
  loaded <- tryCatch({
    settings <- container_settings()
    model <- load_model(settings$model_path)
    list(settings = settings, model = model)
  }, error = function(e) e)
  if (inherits(loaded, "error")) {
    cat(sprintf("ERROR: %s\n", conditionMessage(loaded)), file = stderr())
    quit(save = "no", status = 1L)
  }
  settings <- loaded$settings
  model <- loaded$model
  input_type <- settings$input_type
  if (is.na(input_type)) input_type <- model$input_type
  if (input_type != model$input_type) {
    log_line("WARNING", sprintf("serving as %s inputs a model built for %s inputs", input_type, model$input_type))
  }
  write_ready_file(settings$ready_file)
  address <- sprintf("tcp://%s:%d", settings$clipper_ip, settings$clipper_port)
  log_line("INFO", sprintf("serving model %s:%s (%s inputs) to %s", settings$model_name,
                           settings$model_version, input_type, address))
  metadata <- encode_new_container(settings$model_name, settings$model_version, INPUT_TYPE_CODES[[input_type]])
  handler <- function(request) answer_request(request, input_type, model$input_class, model$prediction_function)
  context <- pbdZMQ::zmq.ctx.new()
  session <- 0L
  outcome <- "reconnect"
  while (outcome == "reconnect") {
    session <- session + 1L
    outcome <- run_session(context, address, session, metadata, handler, settings$poll_ms,
                           settings$activity_timeout_ms)
  }
  log_line("INFO", "stopped serving")
  quit(save = "no", status = 0L)
}

write_ready_file <- function(path) {
  if (!nzchar(path)) return(invisible())
  ok <- tryCatch({ writeLines("READY", path, sep = ""); TRUE }, error = function(e) FALSE, warning = function(w) FALSE)
  if (!ok) log_line("WARNING", sprintf("cannot write the readiness file %s", path))
}

# One DEALER session; returns "reconnect" when the frontend has been silent for the activity
# timeout, "exit" when stopped (drained, or interrupted before any frontend knew us).
run_session <- function(context, address, session, metadata, handler, poll_ms, activity_timeout_ms) {
  socket <- pbdZMQ::zmq.socket(context, pbdZMQ::ZMQ.ST()$DEALER)
  on.exit(pbdZMQ::zmq.close(socket), add = TRUE)
  pbdZMQ::zmq.setsockopt(socket, pbdZMQ::ZMQ.SO()$LINGER, 0L)
  pbdZMQ::zmq.connect(socket, address)
  log_line("INFO", sprintf("session %d: connecting to %s", session, address))
  send_frames(socket, encode_container_heartbeat())
  is_connected <- FALSE
  is_draining <- FALSE
  last_activity <- last_request <- now_s()
  start_draining <- function() {
    if (is_draining) return(invisible())
    log_line("INFO", "draining: answering what comes, then exiting")
    is_draining <<- TRUE
    last_request <<- now_s()
    send_frames(socket, encode_container_draining())
    send_frames(socket, encode_container_heartbeat())
  }
  repeat {
    polled <- poll_interruptibly(socket, if (is_draining) DRAIN_HEARTBEAT_MS else poll_ms)
    if (identical(polled, "interrupt")) {
      if (!is_connected) return("exit")
      start_draining()
      next
    }
    if (polled) {
      frames <- pbdZMQ::zmq.recv.multipart(socket, unserialize = FALSE)
      is_connected <- TRUE
      last_activity <- now_s()
      inbound <- handle_message(socket, frames, metadata, handler, is_draining)
      if (serving_state$drain_requested) {  # the stop signal came during the prediction
        serving_state$drain_requested <- FALSE
        start_draining()
      }
      if (inbound == "predict") {
        last_request <- last_activity
      } else if (is_draining && inbound == "metadata_request") {
        log_line("INFO", "drained: the frontend has let this container go")
        return("exit")
      }
    } else if (is_draining) {
      if (now_s() - last_request >= DRAIN_QUIET_S) {
        log_line("INFO", sprintf("drained: no request for %.1f s", DRAIN_QUIET_S))
        return("exit")
      }
      send_frames(socket, encode_container_heartbeat())
    } else if (is_connected) {
      idle_s <- now_s() - last_activity
      if (idle_s * 1000 >= activity_timeout_ms) {
        log_line("WARNING", sprintf("no message from the frontend for %.1f s; reconnecting with a new socket", idle_s))
        return("reconnect")
      }
      send_frames(socket, encode_container_heartbeat())
    }
  }
}

# TRUE when a message is waiting, FALSE on timeout, "interrupt" when the process was told to
# stop (SIGINT; the local launcher turns SIGTERM into it, Docker's STOPSIGNAL is SIGINT).
# Interrupts are caught here and around the prediction (call_model), where R spends its time.
poll_interruptibly <- function(socket, timeout_ms) {
  pollin <- pbdZMQ::ZMQ.PO()$POLLIN
  tryCatch({
    # check.eintr: a signal during the poll is an interrupt now, not at some later evaluation.
    polled <- pbdZMQ::zmq.poll(c(socket), c(pollin), as.integer(timeout_ms),
                               MC = pbdZMQ::ZMQ.MC(check.eintr = TRUE))
    polled[1] > 0 && bitwAnd(pbdZMQ::zmq.poll.get.revents(1L), pollin) != 0L
  }, interrupt = function(e) "interrupt")
}

# Returns what came: "malformed", "keep_alive", "metadata_request" or "predict".
handle_message <- function(socket, frames, metadata, handler, is_draining) {
  message <- tryCatch(decode_from_frontend(frames), rpc_protocol_error = function(e) e)
  if (inherits(message, "rpc_protocol_error")) {
    log_line("WARNING", sprintf("dropping a malformed message from the frontend: %s", conditionMessage(message)))
    return("malformed")
  }
  if (message$kind == "heartbeat") {
    if (message$heartbeat_type != HEARTBEAT_REQUEST_METADATA) return("keep_alive")
    if (!is_draining) {  # a draining container never registers again
      log_line("INFO", "frontend asked for metadata; registering")
      send_frames(socket, metadata)
    }
    return("metadata_request")
  }
  send_frames(socket, handler(message))
  "predict"
}

send_frames <- function(socket, frames) {
  pbdZMQ::zmq.send.multipart(socket, frames, serialize = FALSE)
}

now_s <- function() proc.time()[["elapsed"]]
