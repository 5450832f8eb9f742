"""Python model-container runtime: serves a model to the query frontend over RPC v3."""

from containers.python.inputs import BadModelOutput, InputDecodeError, ModelInputs, decode_inputs
from containers.python.rpc import (
    AnyInputModelContainer,
    ModelContainerBase,
    RPCService,
    configure_logging,
    exit_with_error,
    string_to_input_type,
)
from containers.python.settings import ContainerConfigError, ContainerSettings

__all__ = [
    "AnyInputModelContainer",
    "BadModelOutput",
    "ContainerConfigError",
    "ContainerSettings",
    "InputDecodeError",
    "ModelContainerBase",
    "ModelInputs",
    "RPCService",
    "configure_logging",
    "decode_inputs",
    "exit_with_error",
    "string_to_input_type",
]
