"""One rule for model names and versions on both sides: clipper_admin states it again (it may not
import clipper_core), so the two must agree on every case."""

from __future__ import annotations

import pytest

from clipper_admin import ClipperException
from clipper_admin._validation import DNS1123_SUBDOMAIN_REGEX, validate_versioned_model_name
from clipper_core.state import is_dns1123_subdomain
from clipper_core.state.names import DNS1123_SUBDOMAIN_REGEX as CORE_REGEX

CASES = [
    "m", "1", "my-model", "model.v2", "1.0.3", "a" * 253, "a" * 254, "", ".", "..", "../x",
    "../../../../escaped", "m/1", "M", "My_Model", "m_1", "-m", "m-", ".m", "m.", "m..n", "m:1",
    "m,1", "m 1", "m\n", "\u00e9", "a." + "b" * 62, "x" * 64,
]


def _admin_accepts(value: str) -> bool:
    try:
        validate_versioned_model_name(value, "1")
        validate_versioned_model_name("m", value)
    except ClipperException:
        return False
    return True


def test_the_two_regexes_are_the_same_text() -> None:
    assert DNS1123_SUBDOMAIN_REGEX == CORE_REGEX


@pytest.mark.parametrize("value", CASES)
def test_admin_and_core_agree(value: str) -> None:
    assert _admin_accepts(value) == is_dns1123_subdomain(value)


def test_the_cases_cover_both_answers() -> None:
    assert {is_dns1123_subdomain(value) for value in CASES} == {True, False}
    assert not is_dns1123_subdomain("../../../../escaped")
