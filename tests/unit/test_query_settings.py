"""QuerySettings.parse: the model-side knobs (batch wait, response grace, inactivity timeout)."""

from __future__ import annotations

import pytest

from clipper_core.settings import (
    DEFAULT_BATCH_RESPONSE_GRACE_S,
    DEFAULT_BATCH_WAIT_S,
    DEFAULT_INACTIVITY_TIMEOUT_S,
    QuerySettings,
)


def test_model_side_defaults() -> None:
    settings = QuerySettings.parse([], {})
    assert settings.batch_wait_s == DEFAULT_BATCH_WAIT_S == 0.0
    assert settings.batch_response_grace_s == DEFAULT_BATCH_RESPONSE_GRACE_S == 30.0
    assert settings.inactivity_timeout_s == DEFAULT_INACTIVITY_TIMEOUT_S == 30.0
    assert settings == QuerySettings()


def test_model_side_knobs_from_flags_and_environment() -> None:
    env = {
        "CLIPPER_BATCH_WAIT_S": "0.002",
        "CLIPPER_BATCH_RESPONSE_GRACE_S": "5",
        "CLIPPER_INACTIVITY_TIMEOUT_S": "2.5",
    }
    from_env = QuerySettings.parse([], env)
    assert (from_env.batch_wait_s, from_env.batch_response_grace_s, from_env.inactivity_timeout_s) == (
        0.002,
        5.0,
        2.5,
    )
    from_flags = QuerySettings.parse(
        ["--batch_wait_s=0", "--batch_response_grace_s", "1.5", "--inactivity_timeout_s", "9"], env
    )
    assert (from_flags.batch_wait_s, from_flags.batch_response_grace_s, from_flags.inactivity_timeout_s) == (
        0.0,
        1.5,
        9.0,
    )


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        (["--batch_wait_s", "-1"], {}, "invalid value for --batch_wait_s: -1.0 is negative"),
        (["--batch_response_grace_s", "0"], {}, "--batch_response_grace_s: 0.0 must be a positive"),
        ([], {"CLIPPER_INACTIVITY_TIMEOUT_S": "soon"}, "'soon' is not a number"),
        (["--inactivity_timeout_s", "inf"], {}, "'inf' is not a finite number"),
    ],
)
def test_bad_model_side_values_exit_with_a_message(
    argv: list[str], env: dict[str, str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        QuerySettings.parse(argv, env)
    assert info.value.code == 2
    assert fragment in capsys.readouterr().err
