# RPC v3 codec: ZeroMQ multipart frames (lists of raw vectors) <-> messages. Pure; no sockets.
#
# The same frames as clipper_core/rpc/codec.py (the reference), as the container's DEALER
# sees them, starting with the empty delimiter frame. Integers are little-endian.
#
# Container -> frontend (no RPC-version frame):
#   heartbeat:      ["", u32 2]
#   new container:  ["", u32 0, name, version, "<input type digit>", u32 3]
#   response:       ["", u32 1, msg_id (4 bytes), u64 8(n+1), u64[n+1] [n, len_0..], out_0 .. out_n-1]
#   error (ours):   ["", u32 3, msg_id (4 bytes), u32 kind, utf-8 message]
#   draining (ours): ["", u32 4]
# Frontend -> container:
#   heartbeat:      ["", u32 3, u32 2, u32 heartbeat_type]
#   predict:        ["", u32 3, u32 1, u32 msg_id, u32 0, u64 8(2+n), u64[2+n] [type, n, size_0..], in_0 ..]
#
# The error message (type 3) is this project's extension: the query frontend answers the
# batch's queries with the default output and the cause at once; the container keeps serving.
# The draining message (type 4) is the second: a container told to stop asks for no new batch
# and exits once the frontend lets it go (an unprompted RequestContainerMetadata).

RPC_VERSION <- 3L
MSG_NEW_CONTAINER <- 0L
MSG_CONTAINER_CONTENT <- 1L
MSG_HEARTBEAT <- 2L
MSG_CONTAINER_ERROR <- 3L
MSG_CONTAINER_DRAINING <- 4L
HEARTBEAT_KEEPALIVE <- 0L
HEARTBEAT_REQUEST_METADATA <- 1L
REQUEST_PREDICT <- 0L
ERROR_MODEL_EXCEPTION <- 0L
ERROR_BAD_OUTPUT <- 1L
ERROR_BAD_INPUT <- 2L
# Bound on the items a header may announce, as the Python codec's MAX_BATCH_ITEMS.
MAX_BATCH_ITEMS <- 2^20

rpc_protocol_error <- function(text) {
  structure(class = c("rpc_protocol_error", "error", "condition"),
            list(message = text, call = NULL))
}

protocol_stop <- function(...) stop(rpc_protocol_error(paste0(...)))

# Unsigned little-endian integers. Values are doubles so a u32 above 2^31 and a u64 up to
# 2^53 stay exact (R's integers are signed 32-bit).
pack_uint <- function(value, size) {
  value <- as.numeric(value)
  if (length(value) == 0L) return(raw(0))
  if (any(is.na(value) | value < 0 | value >= 2^(8 * size) | value != floor(value))) {
    protocol_stop("value does not fit in a u", 8 * size)
  }
  place <- 256^(seq_len(size) - 1L)
  as.raw(as.vector(t(outer(value, place, function(v, p) floor(v / p) %% 256))))
}

unpack_uint <- function(bytes, size) {
  if (length(bytes) %% size != 0L) protocol_stop("frame of ", length(bytes), " bytes is not u", 8 * size, " words")
  if (length(bytes) == 0L) return(numeric(0))
  words <- matrix(as.numeric(bytes), nrow = size)
  as.vector(colSums(words * 256^(seq_len(size) - 1L)))
}

u32 <- function(value) pack_uint(value, 4L)
u64 <- function(value) pack_uint(value, 8L)

read_u32 <- function(frame, what) {
  if (length(frame) != 4L) protocol_stop(what, " frame has ", length(frame), " bytes, expected 4")
  unpack_uint(frame, 4L)
}

read_u64 <- function(frame, what) {
  if (length(frame) != 8L) protocol_stop(what, " frame has ", length(frame), " bytes, expected 8")
  unpack_uint(frame, 8L)
}

utf8_raw <- function(text) charToRaw(enc2utf8(as.character(text)))

encode_container_heartbeat <- function() list(raw(0), u32(MSG_HEARTBEAT))

encode_container_draining <- function() list(raw(0), u32(MSG_CONTAINER_DRAINING))

encode_new_container <- function(model_name, model_version, input_type_code) {
  if (!(input_type_code %in% 0:4)) protocol_stop("cannot register a container with input type ", input_type_code)
  list(raw(0), u32(MSG_NEW_CONTAINER), utf8_raw(model_name), utf8_raw(model_version),
       charToRaw(as.character(as.integer(input_type_code))), u32(RPC_VERSION))
}

# `message_id` is the request's 4-byte frame, echoed verbatim; `outputs` a character vector.
encode_predict_response <- function(message_id, outputs) {
  payloads <- lapply(as.character(outputs), utf8_raw)
  header <- u64(c(length(payloads), vapply(payloads, length, numeric(1))))
  c(list(raw(0), u32(MSG_CONTAINER_CONTENT), message_id, u64(length(header)), header), payloads)
}

encode_container_error <- function(message_id, kind, text) {
  list(raw(0), u32(MSG_CONTAINER_ERROR), message_id, u32(kind), utf8_raw(text))
}

encode_heartbeat_reply <- function(heartbeat_type) {
  list(raw(0), u32(RPC_VERSION), u32(MSG_HEARTBEAT), u32(heartbeat_type))
}

encode_predict_request <- function(message_id, input_type_code, inputs) {
  header <- u64(c(input_type_code, length(inputs), vapply(inputs, length, numeric(1))))
  c(list(raw(0), u32(RPC_VERSION), u32(MSG_CONTAINER_CONTENT), u32(message_id), u32(REQUEST_PREDICT),
         u64(length(header)), header), inputs)
}

# Decode a message the frontend sent. Returns list(kind = "heartbeat", heartbeat_type) or
# list(kind = "predict", message_id, message_id_raw, input_type, inputs); anything malformed
# signals an `rpc_protocol_error` condition.
decode_from_frontend <- function(frames) {
  expect_min(frames, 3L)
  if (length(frames[[1]]) != 0L) protocol_stop("first frame is not the empty delimiter")
  version <- read_u32(frames[[2]], "RPC version")
  if (version != RPC_VERSION) protocol_stop("RPC version ", version, " is not ", RPC_VERSION)
  kind <- read_u32(frames[[3]], "message type")
  if (kind == MSG_HEARTBEAT) {
    if (length(frames) != 4L) protocol_stop("heartbeat reply must have 4 frames, got ", length(frames))
    heartbeat_type <- read_u32(frames[[4]], "heartbeat type")
    if (!(heartbeat_type %in% c(HEARTBEAT_KEEPALIVE, HEARTBEAT_REQUEST_METADATA))) {
      protocol_stop("unknown heartbeat type ", heartbeat_type)
    }
    return(list(kind = "heartbeat", heartbeat_type = as.integer(heartbeat_type)))
  }
  if (kind == MSG_CONTAINER_CONTENT) return(decode_predict_request(frames))
  if (kind == MSG_NEW_CONTAINER) protocol_stop("frontend sent a new-container message")
  protocol_stop("unknown message type ", kind)
}

decode_predict_request <- function(frames) {
  expect_min(frames, 7L)
  message_id <- read_u32(frames[[4]], "message id")
  request_type <- read_u32(frames[[5]], "request type")
  if (request_type != REQUEST_PREDICT) protocol_stop("unsupported request type ", request_type)
  header <- read_sized_header(frames[[6]], frames[[7]], offset = 2L)
  if (header[1] > 4) protocol_stop("unknown input type ", header[1])
  inputs <- frames[-(1:7)]
  check_payloads(header[-(1:2)], inputs)
  list(kind = "predict", message_id = message_id, message_id_raw = frames[[4]],
       input_type = as.integer(header[1]), inputs = inputs)
}

# Decode what a container sent (the frontend's side); used by the tests to check our frames
# the way the query frontend reads them.
decode_from_container <- function(frames) {
  expect_min(frames, 2L)
  if (length(frames[[1]]) != 0L) protocol_stop("first frame is not the empty delimiter")
  kind <- read_u32(frames[[2]], "message type")
  if (kind == MSG_HEARTBEAT) {
    if (length(frames) != 2L) protocol_stop("heartbeat must have 2 frames, got ", length(frames))
    return(list(kind = "heartbeat"))
  }
  if (kind == MSG_NEW_CONTAINER) {
    if (length(frames) != 6L) protocol_stop("new-container message must have 6 frames, got ", length(frames))
    return(list(kind = "new_container", model_name = rawToChar(frames[[3]]),
                model_version = rawToChar(frames[[4]]), input_type = as.integer(rawToChar(frames[[5]])),
                rpc_version = read_u32(frames[[6]], "RPC version")))
  }
  if (kind == MSG_CONTAINER_CONTENT) {
    expect_min(frames, 5L)
    sizes <- read_sized_header(frames[[4]], frames[[5]], offset = 1L)[-1]
    outputs <- frames[-(1:5)]
    check_payloads(sizes, outputs)
    return(list(kind = "response", message_id = read_u32(frames[[3]], "message id"),
                outputs = vapply(outputs, rawToChar, character(1))))
  }
  if (kind == MSG_CONTAINER_DRAINING) {
    if (length(frames) != 2L) protocol_stop("draining message must have 2 frames, got ", length(frames))
    return(list(kind = "draining"))
  }
  if (kind == MSG_CONTAINER_ERROR) {
    if (length(frames) != 5L) protocol_stop("container error must have 5 frames, got ", length(frames))
    return(list(kind = "error", message_id = read_u32(frames[[3]], "message id"),
                error_kind = as.integer(read_u32(frames[[4]], "error kind")),
                message = rawToChar(frames[[5]])))
  }
  protocol_stop("unknown message type ", kind)
}

# u64 L + u64[...]: `offset` words precede the per-item sizes, the count n is the last of them.
read_sized_header <- function(length_frame, header_frame, offset) {
  declared <- read_u64(length_frame, "header length")
  actual <- length(header_frame)
  if (declared != actual) protocol_stop("header length frame says ", declared, " bytes, header has ", actual)
  if (actual < 8L * offset || actual %% 8L != 0L) {
    protocol_stop("header of ", actual, " bytes is not ", offset, " or more u64 words")
  }
  values <- unpack_uint(header_frame, 8L)
  n <- values[offset]
  if (n > MAX_BATCH_ITEMS || length(values) != offset + n) {
    protocol_stop("header announces ", n, " items but holds ", length(values) - offset, " sizes")
  }
  values
}

check_payloads <- function(sizes, payloads) {
  if (length(sizes) != length(payloads)) {
    protocol_stop("header announces ", length(sizes), " payloads, message has ", length(payloads))
  }
  actual <- vapply(payloads, length, numeric(1))
  bad <- which(actual != sizes)
  if (length(bad) > 0L) {
    i <- bad[1]
    protocol_stop("payload ", i - 1L, " has ", actual[i], " bytes, header says ", sizes[i])
  }
}

expect_min <- function(frames, count) {
  if (length(frames) < count) protocol_stop("expected at least ", count, " frames, got ", length(frames))
}
