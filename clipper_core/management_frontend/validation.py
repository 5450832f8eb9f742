"""Request bodies of every ``/admin/*`` endpoint -> typed requests, or the original's 400 text (pure).

Each ``parse_*`` reads the fields in the original's order, so the first failing field decides the
message, and runs every check that needs no Redis (input type, batch size, forbidden characters).
A JSON problem becomes ``Error parsing JSON: <msg>. Expected JSON schema: <schema>`` with the
endpoint's schema string of the original (core spec, Appendix A); other problems carry their bare
text. Both are raised as :class:`Rejected`.

As in the original, add_model refuses ``,`` and ``:`` with the original's text. Beyond the
original, model names and versions must be DNS-1123 subdomains (``clipper_core.state.names``) in
add_model and set_model_version: they become container names, object names and file names, and a
name such as ``../../x`` must not reach a container manager. Application names are not checked
(they name only an endpoint), so a client of the original that registers e.g. ``My_App`` keeps
working; lookups and delete_versioned_model accept any name, so an old record can still be removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from clipper_core.errors import Rejected
from clipper_core.jsontext import (
    JsonError,
    JsonSemanticError,
    parse_json,
    read_bool,
    read_int,
    read_string,
    read_string_array,
    schema_error_text,
    type_mismatch_message,
    type_name,
)
from clipper_core.state import (
    DEFAULT_BATCH_SIZE,
    FORBIDDEN_NAME_CHARS,
    SELECTION_POLICIES,
    InputType,
    SelectionPolicyName,
    invalid_name_message,
    is_dns1123_subdomain,
)

__all__ = [
    "MAX_LATENCY_SLO_MICROS",
    "AddApp",
    "AddModel",
    "AppName",
    "ContainerRef",
    "ModelLinks",
    "ModelRef",
    "Schema",
    "SelectionChoice",
    "SelectionStateRequest",
    "SetBatchSize",
    "SetSelectionPolicy",
    "Verbose",
    "invalid_input_type_message",
    "latency_slo_message",
    "parse_add_app",
    "parse_add_model",
    "parse_add_model_links",
    "parse_app_name",
    "parse_container_ref",
    "parse_delete_app",
    "parse_delete_model_links",
    "parse_delete_versioned_model",
    "parse_get_application",
    "parse_get_model",
    "parse_get_state",
    "parse_linked_models_request",
    "parse_set_batch_size",
    "parse_set_model_version",
    "parse_set_selection_policy",
    "parse_verbose",
]


class Schema:
    """The schema strings the original embeds in its JSON error messages (exact)."""

    ADD_APP: Final = (
        "\n  {\n   \"name\" := string,\n"
        "   \"input_type\" := \"integers\" | \"bytes\" | \"floats\" | \"doubles\" | \"strings\",\n"
        "   \"default_output\" := string,\n   \"latency_slo_micros\" := int\n  }\n"
    )
    ADD_MODEL_LINKS: Final = "\n  {\n    \"app_name\" := string,\n    \"model_names\" := [string]\n  }\n"
    DELETE_MODEL_LINKS: Final = "\n  {\n  \"app_name\" := string,\n  \"model_names\" := [string]\n  }\n"
    GET_LINKED_MODELS: Final = "\n  {\n    \"app_name\" := string\n  }\n"
    VERBOSE: Final = "\n  {\n    \"verbose\" := bool\n  }\n"
    GET_APPLICATION: Final = "\n  {\n    \"name\" := string\n  }\n"
    GET_MODEL: Final = "\n  {\n    \"model_name\" := string,\n    \"model_version\" := string\n  }\n"
    GET_CONTAINER: Final = (
        "\n  {\n    \"model_name\" := string,\n    \"model_version\" := string,\n"
        "    \"replica_id\" := int\n  }\n"
    )
    ADD_MODEL: Final = (
        "\n  {\n   \"model_name\" := string,\n   \"model_version\" := string,\n"
        "   \"labels\" := [string],\n"
        "   \"input_type\" := \"integers\" | \"bytes\" | \"floats\" | \"doubles\" | \"strings\",\n"
        "   \"container_name\" := string,\n   \"model_data_path\" := string\n  }\n"
    )
    VERSIONED_MODEL: Final = "\n  {\n   \"model_name\" := string,\n   \"model_version\" := string,\n  }\n"
    GET_STATE: Final = "\n  {\n   \"app_name\" := string,\n   \"uid\" := int,\n  }\n"
    # Ours (set_model_batch_size, set_selection_policy are not in the original), in the same style.
    SET_SELECTION_POLICY: Final = (
        "\n  {\n   \"app_name\" := string,\n"
        "   \"selection_policy\" := \"DefaultOutputSelectionPolicy\" | \"exp3\" | \"exp4\" | \"ab\",\n"
        "   \"confidence_threshold\" := double (optional, exp4),\n"
        "   \"policy_weights\" := {string: double} (optional, ab)\n  }\n"
    )
    SET_BATCH_SIZE: Final = (
        "\n  {\n   \"model_name\" := string,\n   \"model_version\" := string,\n"
        "   \"batch_size\" := int\n  }\n"
    )


# ---------------------------------------------------------------------------- request records


@dataclass(slots=True, frozen=True)
class SelectionChoice:
    """A selection policy and its settings (ours): ``confidence_threshold`` for exp4,
    ``policy_weights`` (model name -> traffic weight) for the A/B split."""

    policy: str
    confidence_threshold: float | None = None
    policy_weights: tuple[tuple[str, float], ...] = ()


@dataclass(slots=True, frozen=True)
class AddApp:
    name: str
    input_type: InputType
    default_output: str
    latency_slo_micros: int
    # None: the request did not name a policy (the original's request; the original's record).
    selection: SelectionChoice | None = None


@dataclass(slots=True, frozen=True)
class SetSelectionPolicy:
    app_name: str
    selection: SelectionChoice


@dataclass(slots=True, frozen=True)
class AppName:
    name: str


@dataclass(slots=True, frozen=True)
class ModelLinks:
    app_name: str
    model_names: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class AddModel:
    model_name: str
    model_version: str
    labels: tuple[str, ...]
    input_type: InputType
    container_name: str
    model_data_path: str
    batch_size: int


@dataclass(slots=True, frozen=True)
class ModelRef:
    model_name: str
    model_version: str


@dataclass(slots=True, frozen=True)
class ContainerRef:
    model_name: str
    model_version: str
    replica_id: int


@dataclass(slots=True, frozen=True)
class Verbose:
    verbose: bool


@dataclass(slots=True, frozen=True)
class SelectionStateRequest:
    app_name: str
    uid: int


@dataclass(slots=True, frozen=True)
class SetBatchSize:
    model_name: str
    model_version: str
    batch_size: int


# ---------------------------------------------------------------------------- helpers

R = TypeVar("R")

BATCH_SIZE_MESSAGE: Final = "The batch size must be positive or DEFAULT_BATCH_SIZE, which is -1"
# Ours (the original took any int32): a deadline must lie ahead, and a query held longer than
# this is kept queued, with its memory, long after any client stopped waiting for it.
MAX_LATENCY_SLO_MICROS: Final = 60_000_000


def latency_slo_message(slo_micros: int) -> str:
    return (
        f"Invalid latency_slo_micros supplied: {slo_micros}. The latency SLO must be between 1 "
        f"and {MAX_LATENCY_SLO_MICROS} microseconds ({MAX_LATENCY_SLO_MICROS // 1_000_000} s)"
    )


def _with_schema(schema: str, read: Callable[[object], R], body: bytes) -> R:
    try:
        # The original's rapidjson read a C string and its lookups find the first duplicate key.
        return read(parse_json(body, c_string=True, first_key_wins=True))
    except JsonError as exc:
        raise Rejected(schema_error_text(exc.message, schema)) from None


def invalid_input_type_message(name: str) -> str:
    """The original never answered an unknown input type; we say which names are accepted."""
    canonical = [t.readable_name for t in InputType if t is not InputType.INVALID]
    aliases = [a for a in InputType.accepted_names() if a not in canonical]
    return (
        f"{name} is not a valid input string. Accepted input types: {', '.join(canonical)} "
        f"(aliases: {', '.join(aliases)})"
    )


def _input_type(name: str) -> InputType:
    try:
        return InputType.parse(name)
    except ValueError:
        raise Rejected(invalid_input_type_message(name)) from None


def _check_batch_size(batch_size: int) -> None:
    if batch_size <= 0 and batch_size != DEFAULT_BATCH_SIZE:
        raise Rejected(BATCH_SIZE_MESSAGE)


def _check_key_safe(value: str, what: str) -> None:
    if any(ch in value for ch in FORBIDDEN_NAME_CHARS):
        listed = ", ".join(f"'{ch}'" for ch in FORBIDDEN_NAME_CHARS)
        raise Rejected(f"Invalid {what} supplied: {value}. Contains one of: {listed}")


def _check_model_ref(model_name: str, model_version: str) -> None:
    """Name first, then version: each must be a DNS-1123 subdomain (ours, not the original's)."""
    for value, what in ((model_name, "model name"), (model_version, "model version")):
        if not is_dns1123_subdomain(value):
            raise Rejected(invalid_name_message(what, value))


# ---------------------------------------------------------------------------- endpoints


def parse_add_app(body: bytes) -> AddApp:
    """The original's fields, then (ours, optional) ``selection_policy`` and its settings."""

    def read(doc: object) -> AddApp:
        name = read_string(doc, "name")
        # Converted right after reading, as the original: a bad type wins over later fields.
        input_type = _input_type(read_string(doc, "input_type"))
        default_output = read_string(doc, "default_output")
        slo_micros = read_int(doc, "latency_slo_micros")
        selection = _selection(doc) if isinstance(doc, dict) and "selection_policy" in doc else None
        if selection is None and isinstance(doc, dict):
            for key in _POLICY_SETTINGS:
                if key in doc:
                    raise Rejected(f"{key} needs a selection_policy that uses it")
        return AddApp(name, input_type, default_output, slo_micros, selection)

    request = _with_schema(Schema.ADD_APP, read, body)
    if not 0 < request.latency_slo_micros <= MAX_LATENCY_SLO_MICROS:
        raise Rejected(latency_slo_message(request.latency_slo_micros))
    return request


_POLICY_ALIASES: Final = {"default": SelectionPolicyName.DEFAULT}
_POLICY_SETTINGS: Final = ("confidence_threshold", "policy_weights")


def invalid_policy_message(name: str) -> str:
    return (
        f"{name} is not a valid selection_policy. Accepted policies: {', '.join(SELECTION_POLICIES)}"
    )


def _number(doc: dict[str, object], key: str) -> float:
    value = doc[key]
    if type_name(value) != "Number":
        raise JsonSemanticError(type_mismatch_message(key, "Number", value))
    assert isinstance(value, int | float)
    return float(value)


def _selection(doc: dict[str, object]) -> SelectionChoice:
    """``selection_policy`` and the settings it takes; any other setting is refused."""
    policy = read_string(doc, "selection_policy")
    policy = _POLICY_ALIASES.get(policy, policy)
    if policy not in SELECTION_POLICIES:
        raise Rejected(invalid_policy_message(policy))
    threshold: float | None = None
    if "confidence_threshold" in doc:
        if policy != SelectionPolicyName.EXP4:
            raise Rejected(f"confidence_threshold applies to the exp4 policy only, not to {policy}")
        threshold = _number(doc, "confidence_threshold")
        if not 0.0 <= threshold <= 1.0:
            raise Rejected(
                f"Invalid confidence_threshold supplied: {threshold:g}. It must be between 0 and 1"
            )
    weights: tuple[tuple[str, float], ...] = ()
    if "policy_weights" in doc:
        if policy != SelectionPolicyName.AB:
            raise Rejected(f"policy_weights applies to the ab policy only, not to {policy}")
        raw = doc["policy_weights"]
        if not isinstance(raw, dict):
            raise JsonSemanticError(type_mismatch_message("policy_weights", "Object", raw))
        weights = tuple((str(model), _number(raw, model)) for model in raw)
        if any(weight < 0 for _, weight in weights) or not any(weight > 0 for _, weight in weights):
            raise Rejected(
                "Invalid policy_weights supplied: every weight must be a number >= 0 and at least "
                "one must be positive"
            )
    return SelectionChoice(policy, threshold, weights)


def parse_set_selection_policy(body: bytes) -> SetSelectionPolicy:
    def read(doc: object) -> SetSelectionPolicy:
        app_name = read_string(doc, "app_name")
        read_string(doc, "selection_policy")  # present and a string, else the schema error
        assert isinstance(doc, dict)
        return SetSelectionPolicy(app_name, _selection(doc))

    return _with_schema(Schema.SET_SELECTION_POLICY, read, body)


def parse_app_name(body: bytes, schema: str, key: str = "name") -> AppName:
    return _with_schema(schema, lambda doc: AppName(read_string(doc, key)), body)


def parse_delete_app(body: bytes) -> AppName:
    # The original cites the add_app schema here.
    return parse_app_name(body, Schema.ADD_APP)


def parse_get_application(body: bytes) -> AppName:
    return parse_app_name(body, Schema.GET_APPLICATION)


def parse_linked_models_request(body: bytes) -> AppName:
    return parse_app_name(body, Schema.GET_LINKED_MODELS, key="app_name")


def _links(schema: str, body: bytes) -> ModelLinks:
    def read(doc: object) -> ModelLinks:
        app_name = read_string(doc, "app_name")
        return ModelLinks(app_name, tuple(read_string_array(doc, "model_names")))

    return _with_schema(schema, read, body)


def parse_add_model_links(body: bytes) -> ModelLinks:
    return _links(Schema.ADD_MODEL_LINKS, body)


def parse_delete_model_links(body: bytes) -> ModelLinks:
    return _links(Schema.DELETE_MODEL_LINKS, body)


def parse_add_model(body: bytes) -> AddModel:
    def read(doc: object) -> AddModel:
        model_name = read_string(doc, "model_name")
        model_version = read_string(doc, "model_version")
        labels = tuple(read_string_array(doc, "labels"))
        input_type = _input_type(read_string(doc, "input_type"))
        container_name = read_string(doc, "container_name")
        model_data_path = read_string(doc, "model_data_path")
        batch_size = read_int(doc, "batch_size")
        return AddModel(
            model_name, model_version, labels, input_type, container_name, model_data_path, batch_size
        )

    request = _with_schema(Schema.ADD_MODEL, read, body)
    _check_batch_size(request.batch_size)
    _check_key_safe(request.model_name, "model name")
    _check_key_safe(request.model_version, "model version")
    for label in request.labels:
        _check_key_safe(label, "label")
    _check_model_ref(request.model_name, request.model_version)
    return request


def _model_ref(schema: str, body: bytes) -> ModelRef:
    def read(doc: object) -> ModelRef:
        model_name = read_string(doc, "model_name")
        return ModelRef(model_name, read_string(doc, "model_version"))

    return _with_schema(schema, read, body)


def parse_set_model_version(body: bytes) -> ModelRef:
    request = _model_ref(Schema.VERSIONED_MODEL, body)
    _check_model_ref(request.model_name, request.model_version)
    return request


def parse_delete_versioned_model(body: bytes) -> ModelRef:
    return _model_ref(Schema.VERSIONED_MODEL, body)


def parse_get_model(body: bytes) -> ModelRef:
    return _model_ref(Schema.GET_MODEL, body)


def _model_ref_and_int(schema: str, int_key: str, record: Callable[[str, str, int], R], body: bytes) -> R:
    """``model_name``, ``model_version``, then one int field, in that order."""

    def read(doc: object) -> R:
        model_name = read_string(doc, "model_name")
        model_version = read_string(doc, "model_version")
        return record(model_name, model_version, read_int(doc, int_key))

    return _with_schema(schema, read, body)


def parse_container_ref(body: bytes) -> ContainerRef:
    return _model_ref_and_int(Schema.GET_CONTAINER, "replica_id", ContainerRef, body)


def parse_verbose(body: bytes) -> Verbose:
    return _with_schema(Schema.VERBOSE, lambda doc: Verbose(read_bool(doc, "verbose")), body)


def parse_get_state(body: bytes) -> SelectionStateRequest:
    def read(doc: object) -> SelectionStateRequest:
        app_name = read_string(doc, "app_name")
        return SelectionStateRequest(app_name, read_int(doc, "uid"))

    return _with_schema(Schema.GET_STATE, read, body)


def parse_set_batch_size(body: bytes) -> SetBatchSize:
    request = _model_ref_and_int(Schema.SET_BATCH_SIZE, "batch_size", SetBatchSize, body)
    _check_batch_size(request.batch_size)
    return request
