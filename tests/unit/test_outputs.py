"""JSON embedding of model outputs in prediction objects (core spec 2.2)."""

from __future__ import annotations

import orjson
import pytest

from clipper_core.query_frontend.outputs import embed_output, embed_text


def rendered(raw: bytes) -> bytes:
    return orjson.dumps({"output": embed_output(raw)})


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"1", b'{"output":1}'),
        (b"0.5", b'{"output":0.5}'),
        (b"-3e2", b'{"output":-3e2}'),
        (b"cat", b'{"output":"cat"}'),
        (b"", b'{"output":""}'),
        (b"NaN", b'{"output":"NaN"}'),
        (b"Infinity", b'{"output":"Infinity"}'),
        (b"true", b'{"output":true}'),
        (b"null", b'{"output":null}'),
        (b'"quoted"', b'{"output":"quoted"}'),
        (b'{"label": "cat", "p": [0.1, 0.9]}', b'{"output":{"label": "cat", "p": [0.1, 0.9]}}'),
        (b"[1,2,3]", b'{"output":[1,2,3]}'),
        (b"  \n 42 \t", b'{"output":42}'),
        (b"[1,]", b'{"output":"[1,]"}'),
        (b"1 2", b'{"output":"1 2"}'),
        (b"1e400", b'{"output":"1e400"}'),
        (b'he said "hi"\n', b'{"output":"he said \\"hi\\"\\n"}'),
    ],
)
def test_embedding_rules(raw: bytes, body: bytes) -> None:
    assert rendered(raw) == body


def test_big_integers_survive_exactly() -> None:
    # rapidjson would turn the literal into a double; we splice the model's bytes verbatim.
    assert rendered(b"123456789012345678901234567890") == b'{"output":123456789012345678901234567890}'


def test_invalid_utf8_becomes_a_string_with_replacement() -> None:
    assert orjson.loads(rendered(b"ab\xffcd")) == {"output": "ab\ufffdcd"}


def test_default_output_text_follows_the_same_rule() -> None:
    assert orjson.dumps({"output": embed_text("1.5")}) == b'{"output":1.5}'
    assert orjson.dumps({"output": embed_text("no_pred")}) == b'{"output":"no_pred"}'
    assert orjson.dumps({"output": embed_text("ü")}) == '{"output":"ü"}'.encode()


def test_every_embedding_is_valid_json_inside_a_response() -> None:
    for raw in [b"1", b"cat", b"{", b'{"a":1}', b"\x00", b"\x7f", b"\t"]:
        assert "output" in orjson.loads(rendered(raw))
