"""RPC v3 wire codec shared by the query frontend and the model-container runtime."""

from clipper_core.errors import RpcProtocolError
from clipper_core.rpc.codec import (
    decode_from_container,
    decode_from_frontend,
    encode_container_draining,
    encode_container_error,
    encode_container_heartbeat,
    encode_heartbeat_reply,
    encode_new_container,
    encode_predict_request,
    encode_predict_response,
)
from clipper_core.rpc.curve import RPC_SECRET_ENV, CurveKeys
from clipper_core.rpc.messages import (
    RPC_VERSION,
    ContainerDraining,
    ContainerError,
    ContainerErrorKind,
    ContainerHeartbeat,
    HeartbeatReply,
    HeartbeatType,
    InputType,
    MessageType,
    NewContainer,
    PredictRequest,
    PredictResponse,
    RequestType,
)

__all__ = [
    "RPC_SECRET_ENV",
    "RPC_VERSION",
    "ContainerDraining",
    "ContainerError",
    "ContainerErrorKind",
    "ContainerHeartbeat",
    "CurveKeys",
    "HeartbeatReply",
    "HeartbeatType",
    "InputType",
    "MessageType",
    "NewContainer",
    "PredictRequest",
    "PredictResponse",
    "RequestType",
    "RpcProtocolError",
    "decode_from_container",
    "decode_from_frontend",
    "encode_container_draining",
    "encode_container_error",
    "encode_container_heartbeat",
    "encode_heartbeat_reply",
    "encode_new_container",
    "encode_predict_request",
    "encode_predict_response",
]
