"""The query frontend's limits (issue 11): flags over CLIPPER_<FLAG> over documented defaults."""

from __future__ import annotations

import pytest

from clipper_core.settings import DEFAULT_MAX_INPUTS_PER_REQUEST, QuerySettings


def test_max_inputs_per_request_default_flag_and_environment() -> None:
    assert QuerySettings.parse([], {}).max_inputs_per_request == DEFAULT_MAX_INPUTS_PER_REQUEST == 2048
    env = {"CLIPPER_MAX_INPUTS_PER_REQUEST": "100"}
    assert QuerySettings.parse([], env).max_inputs_per_request == 100
    assert QuerySettings.parse(["--max_inputs_per_request", "7"], env).max_inputs_per_request == 7


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_max_inputs_per_request_must_be_positive(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        QuerySettings.parse(["--max_inputs_per_request", bad], {})
    assert exited.value.code == 2
    assert "--max_inputs_per_request" in capsys.readouterr().err


def test_max_queue_length_default_flag_and_environment() -> None:
    from clipper_core.settings import DEFAULT_MAX_QUEUE_LENGTH

    assert QuerySettings.parse([], {}).max_queue_length == DEFAULT_MAX_QUEUE_LENGTH == 8192
    assert QuerySettings.parse([], {"CLIPPER_MAX_QUEUE_LENGTH": "10"}).max_queue_length == 10
    env = {"CLIPPER_MAX_QUEUE_LENGTH": "10"}
    assert QuerySettings.parse(["--max_queue_length=3"], env).max_queue_length == 3


def test_connection_limits_defaults_flags_and_environment() -> None:
    defaults = QuerySettings.parse([], {})
    assert (defaults.timeout_request, defaults.timeout_content) == (5, 300)  # the original's
    assert (defaults.keepalive_timeout_s, defaults.max_connections) == (15.0, 10_000)
    env = {"CLIPPER_TIMEOUT_REQUEST": "2", "CLIPPER_KEEPALIVE_TIMEOUT_S": "0", "CLIPPER_MAX_CONNECTIONS": "9"}
    settings = QuerySettings.parse(["--timeout_content", "0", "--max_connections", "50"], env)
    assert (settings.timeout_request, settings.timeout_content) == (2, 0)
    assert (settings.keepalive_timeout_s, settings.max_connections) == (0.0, 50)


def test_rpc_spin_bound_default_flag_environment_and_the_container_default() -> None:
    from clipper_core.rpc.spin import DEFAULT_SPIN_US
    from clipper_core.settings import DEFAULT_RPC_SPIN_US

    # Neither end polls unless told to.
    assert QuerySettings.parse([], {}).rpc_spin_us == DEFAULT_RPC_SPIN_US == DEFAULT_SPIN_US == 0
    env = {"CLIPPER_RPC_SPIN_US": "500"}
    assert QuerySettings.parse([], env).rpc_spin_us == 500
    assert QuerySettings.parse(["--rpc_spin_us", "200"], env).rpc_spin_us == 200


def test_rpc_spin_bound_must_not_be_negative(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        QuerySettings.parse(["--rpc_spin_us", "-1"], {})
    assert exited.value.code == 2
    assert "--rpc_spin_us" in capsys.readouterr().err
