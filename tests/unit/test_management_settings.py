"""ManagementSettings.parse and QuerySettings.parse: flags over CLIPPER_<FLAG> over defaults; validation."""

from __future__ import annotations

import pytest

from clipper_core.settings import (
    DEFAULT_BATCH_RESPONSE_GRACE_S,
    DEFAULT_BATCH_WAIT_S,
    DEFAULT_INACTIVITY_TIMEOUT_S,
    LoggingOptions,
    ManagementSettings,
    QuerySettings,
    RedisOptions,
)


def test_defaults_are_the_originals_but_listen_on_the_loopback() -> None:
    settings = ManagementSettings.parse([], {})
    assert settings == ManagementSettings(
        redis=RedisOptions("localhost", 6379, None), host="127.0.0.1", port=1338,
        logging=LoggingOptions("INFO"), admin_token=None,
    )


def test_every_listener_defaults_to_the_loopback_unless_asked() -> None:
    query = QuerySettings.parse([], {})
    assert (query.host, query.rpc_host) == ("127.0.0.1", "127.0.0.1")
    asked = QuerySettings.parse(["--host", "0.0.0.0", "--rpc_host", "0.0.0.0"], {})
    assert (asked.host, asked.rpc_host) == ("0.0.0.0", "0.0.0.0")
    assert ManagementSettings.parse([], {"CLIPPER_MANAGEMENT_HOST": "0.0.0.0"}).host == "0.0.0.0"


def test_admin_token_from_flag_or_environment() -> None:
    assert ManagementSettings.parse(["--admin_token", "t1"], {}).admin_token == "t1"
    assert ManagementSettings.parse([], {"CLIPPER_ADMIN_TOKEN": "t2"}).admin_token == "t2"
    assert ManagementSettings.parse(["--admin_token=t1"], {"CLIPPER_ADMIN_TOKEN": "t2"}).admin_token == "t1"
    assert ManagementSettings.parse([], {"CLIPPER_ADMIN_TOKEN": ""}).admin_token is None


def test_flags_in_both_spellings() -> None:
    settings = ManagementSettings.parse(
        [
            "--redis_ip=10.0.0.5", "--redis_port", "7000", "--host", "127.0.0.1", "--port=0",
            "--log_level", "debug",
        ],
        {},
    )
    assert settings.redis == RedisOptions("10.0.0.5", 7000, None)
    assert (settings.host, settings.port, settings.logging.level) == ("127.0.0.1", 0, "DEBUG")


def test_environment_supplies_defaults_and_the_flag_wins() -> None:
    env = {"CLIPPER_REDIS_IP": "redis", "CLIPPER_REDIS_PORT": "6380", "CLIPPER_MANAGEMENT_PORT": "2000"}
    assert ManagementSettings.parse([], env).redis == RedisOptions("redis", 6380, None)
    assert ManagementSettings.parse([], env).port == 2000
    assert ManagementSettings.parse(["--port", "3000", "--redis_ip", "x"], env).port == 3000
    assert ManagementSettings.parse(["--redis_ip", "x"], env).redis.ip == "x"


def test_password_sources_in_order() -> None:
    assert ManagementSettings.parse([], {"REDIS_PASSWORD": "p1"}).redis.password == "p1"
    env = {"REDIS_PASSWORD": "p1", "CLIPPER_REDIS_PASSWORD": "p2"}
    assert ManagementSettings.parse([], env).redis.password == "p2"
    assert ManagementSettings.parse(["--redis_password", "p3"], env).redis.password == "p3"
    assert ManagementSettings.parse([], {"REDIS_PASSWORD": ""}).redis.password is None


MS, QS = ManagementSettings, QuerySettings


@pytest.mark.parametrize(
    ("settings", "argv", "env", "fragment"),
    [
        (MS, ["--port", "70000"], {}, "invalid value for --port: port 70000 is outside 0-65535"),
        (MS, ["--redis_port", "abc"], {}, "invalid value for --redis_port: 'abc' is not a port number"),
        (MS, [], {"CLIPPER_REDIS_PORT": "-1"}, "environment variable CLIPPER_REDIS_PORT"),
        (MS, ["--log_level", "LOUD"], {}, "is not a log level"),
        (MS, ["--host", " "], {}, "host must not be empty"),
        (MS, ["--rpc_service_port", "7000"], {}, "unrecognized arguments: --rpc_service_port"),
        (QS, ["--batch_wait_s", "-1"], {}, "invalid value for --batch_wait_s: -1.0 is negative"),
        (QS, ["--batch_response_grace_s", "0"], {}, "grace_s: 0.0 must be positive (seconds)"),
        (QS, [], {"CLIPPER_INACTIVITY_TIMEOUT_S": "soon"}, "'soon' is not a number"),
        (QS, ["--inactivity_timeout_s", "inf"], {}, "'inf' is not a finite number"),
    ],
)
def test_bad_values_exit_with_a_message(
    settings: type[ManagementSettings | QuerySettings],
    argv: list[str],
    env: dict[str, str],
    fragment: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        settings.parse(argv, env)
    assert info.value.code == 2
    assert fragment in capsys.readouterr().err


def test_model_containers_port_variable_does_not_move_the_frontends() -> None:
    # CLIPPER_PORT is the model containers' RPC port (original contract), never a REST port.
    env = {"CLIPPER_PORT": "7000"}
    assert ManagementSettings.parse([], env).port == 1338
    assert QuerySettings.parse([], env).port == 1337
    assert QuerySettings.parse([], {"CLIPPER_QUERY_PORT": "2001"}).port == 2001


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


def test_shared_rest_port_and_instance_port() -> None:
    default = QuerySettings.parse([], {})
    assert (default.reuse_port, default.instance_port) == (False, None)
    shared = QuerySettings.parse(["--reuse_port", "true", "--instance_port", "4100"], {})
    assert (shared.reuse_port, shared.instance_port) == (True, 4100)
    from_env = QuerySettings.parse([], {"CLIPPER_REUSE_PORT": "1", "CLIPPER_INSTANCE_PORT": "0"})
    assert (from_env.reuse_port, from_env.instance_port) == (True, 0)
    assert QuerySettings.parse(["--reuse_port=off"], {"CLIPPER_REUSE_PORT": "yes"}).reuse_port is False


@pytest.mark.parametrize("argv", [["--reuse_port", "maybe"], ["--instance_port", "70000"]])
def test_bad_shared_port_settings_exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        QuerySettings.parse(argv, {})
    assert exited.value.code == 2
    assert argv[0] in capsys.readouterr().err
