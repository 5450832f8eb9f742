"""Model output strings -> the ``output`` value of a prediction object (pure).

The original embeds an output that parses as JSON (any value, surrounding whitespace allowed)
as that JSON value and any other output as a JSON string (core spec 2.2). We validate with
orjson (strict RFC 8259, like rapidjson's default mode: no NaN, no trailing commas) and then
splice the model's own bytes into the response as an ``orjson.Fragment``: no re-serialisation,
so big integers and number spellings survive exactly.
"""

from __future__ import annotations

import orjson

__all__ = ["EmbeddedOutput", "embed_output", "embed_text"]

# What goes under "output": a pre-validated JSON fragment, or a plain string to be quoted.
EmbeddedOutput = orjson.Fragment | str

_JSON_WHITESPACE = b" \t\n\r"


def embed_output(raw: bytes) -> EmbeddedOutput:
    """Raw UTF-8 output bytes -> embedded JSON value if they parse as JSON, else a string."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Invalid UTF-8 cannot go into a JSON string; replace rather than fail the query.
        return raw.decode("utf-8", "replace")
    return orjson.Fragment(raw.strip(_JSON_WHITESPACE))


def embed_text(text: str) -> EmbeddedOutput:
    """Same rule for a ``str`` (an application's default output)."""
    return embed_output(text.encode("utf-8", "surrogatepass"))
