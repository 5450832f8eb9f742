# The frames must be byte-identical to clipper_core/rpc/codec.py (the reference).

hex <- function(...) as.raw(strtoi(c(...), 16L))

test_that("unsigned integers pack little-endian, beyond R's signed range", {
  expect_identical(Rclipper:::u32(3), hex("03", "00", "00", "00"))
  expect_identical(Rclipper:::u32(2^32 - 1), rep(as.raw(255), 4))
  expect_identical(Rclipper:::u64(2^40 + 5), hex("05", "00", "00", "00", "00", "01", "00", "00"))
  expect_identical(Rclipper:::unpack_uint(Rclipper:::u64(c(1, 2^33)), 8L), c(1, 2^33))
  expect_error(Rclipper:::u32(2^32), class = "rpc_protocol_error")
  expect_error(Rclipper:::u32(-1), class = "rpc_protocol_error")
})

test_that("heartbeat and new-container frames match the reference layout", {
  expect_identical(Rclipper:::encode_container_heartbeat(), list(raw(0), hex("02", "00", "00", "00")))
  frames <- Rclipper:::encode_new_container("m", "1", 1L)
  expect_identical(frames, list(raw(0), hex("00", "00", "00", "00"), charToRaw("m"), charToRaw("1"),
                                charToRaw("1"), hex("03", "00", "00", "00")))
  expect_error(Rclipper:::encode_new_container("m", "1", 7L), class = "rpc_protocol_error")
})

test_that("a predict response carries the echoed id, the header length and the byte lengths", {
  id <- hex("07", "00", "00", "80")
  frames <- Rclipper:::encode_predict_response(id, c("4", "\u00e9"))
  expect_length(frames, 7L)
  expect_identical(frames[[3]], id)
  expect_identical(frames[[4]], Rclipper:::u64(24))
  expect_identical(frames[[5]], Rclipper:::u64(c(2, 1, 2)))  # "é" is two UTF-8 bytes
  decoded <- Rclipper:::decode_from_container(frames)
  expect_identical(decoded$kind, "response")
  expect_identical(decoded$message_id, 7 + 2^31)
})

test_that("the error extension is type 3 with the kind and the text", {
  frames <- Rclipper:::encode_container_error(hex("01", "00", "00", "00"), 1L, "boom")
  expect_identical(frames[[2]], hex("03", "00", "00", "00"))
  decoded <- Rclipper:::decode_from_container(frames)
  expect_identical(decoded[c("kind", "message_id", "error_kind", "message")],
                   list(kind = "error", message_id = 1, error_kind = 1L, message = "boom"))
})

test_that("predict requests decode; malformed ones are protocol errors", {
  inputs <- list(as.raw(1:8), raw(0))
  frames <- Rclipper:::encode_predict_request(9, 1L, inputs)
  request <- Rclipper:::decode_from_frontend(frames)
  expect_identical(request$kind, "predict")
  expect_identical(request$message_id, 9)
  expect_identical(request$message_id_raw, Rclipper:::u32(9))
  expect_identical(request$input_type, 1L)
  expect_identical(request$inputs, inputs)

  bad_version <- frames
  bad_version[[2]] <- Rclipper:::u32(2)
  expect_error(Rclipper:::decode_from_frontend(bad_version), "RPC version 2", class = "rpc_protocol_error")
  short_payload <- frames
  short_payload[[8]] <- as.raw(1:7)
  expect_error(Rclipper:::decode_from_frontend(short_payload), "payload 0", class = "rpc_protocol_error")
  missing_payload <- frames[1:8]
  expect_error(Rclipper:::decode_from_frontend(missing_payload), "announces 2", class = "rpc_protocol_error")
  bad_length <- frames
  bad_length[[6]] <- Rclipper:::u64(8)
  expect_error(Rclipper:::decode_from_frontend(bad_length), "header length", class = "rpc_protocol_error")
  expect_error(Rclipper:::decode_from_frontend(list(charToRaw("x"), raw(4), raw(4))), "delimiter",
               class = "rpc_protocol_error")
})

test_that("heartbeat replies decode to their type", {
  expect_identical(Rclipper:::decode_from_frontend(Rclipper:::encode_heartbeat_reply(1L)),
                   list(kind = "heartbeat", heartbeat_type = 1L))
  expect_error(Rclipper:::decode_from_frontend(Rclipper:::encode_heartbeat_reply(5L)), "heartbeat type",
               class = "rpc_protocol_error")
})
