"""add_app refuses latency SLOs outside 1 us .. MAX_LATENCY_SLO_MICROS (issue 11 item 3)."""

from __future__ import annotations

import json

import pytest

from clipper_core.errors import Rejected
from clipper_core.management_frontend.validation import MAX_LATENCY_SLO_MICROS, parse_add_app


def _add_app(slo: object) -> bytes:
    return json.dumps(
        {"name": "a", "input_type": "doubles", "default_output": "-1", "latency_slo_micros": slo}
    ).encode()


@pytest.mark.parametrize("slo", [1, 100_000, MAX_LATENCY_SLO_MICROS])
def test_slos_in_range_are_accepted(slo: int) -> None:
    assert parse_add_app(_add_app(slo)).latency_slo_micros == slo


@pytest.mark.parametrize("slo", [0, -1, -100_000, MAX_LATENCY_SLO_MICROS + 1, 1_000_000_000, 2**31 - 1])
def test_negative_zero_and_absurd_slos_are_refused_with_the_allowed_range(slo: int) -> None:
    with pytest.raises(Rejected) as refused:
        parse_add_app(_add_app(slo))
    assert refused.value.message == (
        f"Invalid latency_slo_micros supplied: {slo}. The latency SLO must be between 1 and "
        f"{MAX_LATENCY_SLO_MICROS} microseconds (60 s)"
    )


def test_json_errors_keep_the_original_text_and_win() -> None:
    with pytest.raises(Rejected) as refused:
        parse_add_app(_add_app("-5"))
    assert refused.value.message.startswith(
        "Error parsing JSON: Type mismatch! JSON key latency_slo_micros expected type Number"
        "but found type String"
    )
