"""The container's CLIPPER_* environment contract."""

from __future__ import annotations

import pytest

from clipper_core.rpc import InputType
from containers.python import rpc
from containers.python.settings import ContainerConfigError, ContainerSettings

BASE = {"CLIPPER_MODEL_NAME": "m", "CLIPPER_MODEL_VERSION": "3"}


def test_defaults_match_the_original() -> None:
    settings = ContainerSettings.from_environ(BASE)
    assert settings.model_name == "m"
    assert settings.model_version == "3"
    assert settings.clipper_ip == "127.0.0.1"
    assert settings.clipper_port == 7000
    assert settings.input_type is InputType.DOUBLES
    assert settings.model_path is None
    assert settings.ready_file == "/model_is_ready.check"
    assert settings.metrics_port is None
    assert (settings.poll_ms, settings.activity_timeout_ms) == (5000, 30000)


def test_every_variable_is_read() -> None:
    env = {
        **BASE,
        "CLIPPER_MODEL_PATH": "/model",
        "CLIPPER_IP": "frontend.local",
        "CLIPPER_PORT": "7010",
        "CLIPPER_INPUT_TYPE": " Strings ",
        "CLIPPER_READY_FILE": "/tmp/ready",
        "CLIPPER_METRICS_PORT": "1390",
        "CLIPPER_METRICS_HOST": "127.0.0.1",
        "CLIPPER_RPC_POLL_MS": "50",
        "CLIPPER_RPC_ACTIVITY_TIMEOUT_MS": "400",
        "CLIPPER_RPC_SPIN_US": "300",
    }
    settings = ContainerSettings.from_environ(env)
    assert settings == ContainerSettings(
        model_name="m",
        model_version="3",
        input_type=InputType.STRINGS,
        model_path="/model",
        clipper_ip="frontend.local",
        clipper_port=7010,
        ready_file="/tmp/ready",
        metrics_port=1390,
        metrics_host="127.0.0.1",
        poll_ms=50,
        activity_timeout_ms=400,
        rpc_spin_us=300,
    )


@pytest.mark.parametrize("missing", ["CLIPPER_MODEL_NAME", "CLIPPER_MODEL_VERSION"])
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_name_and_version_are_required(missing: str, how: str) -> None:
    env = dict(BASE)
    if how == "absent":
        del env[missing]
    else:
        env[missing] = ""
    with pytest.raises(ContainerConfigError) as info:
        ContainerSettings.from_environ(env)
    assert str(info.value) == f"{missing} environment variable must be set"


def test_model_path_required_only_when_asked() -> None:
    assert ContainerSettings.from_environ(BASE).model_path is None
    with pytest.raises(ContainerConfigError, match=r"^CLIPPER_MODEL_PATH environment variable must be set$"):
        ContainerSettings.from_environ(BASE, require_model_path=True)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("b", InputType.BYTES), ("INTS", InputType.INTS), ("float", InputType.FLOATS), ("d", InputType.DOUBLES)],
)
def test_input_type_aliases(alias: str, expected: InputType) -> None:
    assert ContainerSettings.from_environ({**BASE, "CLIPPER_INPUT_TYPE": alias}).input_type is expected


def test_unknown_input_type_is_one_line_error() -> None:
    with pytest.raises(ContainerConfigError) as info:
        ContainerSettings.from_environ({**BASE, "CLIPPER_INPUT_TYPE": "tensors"})
    assert "'tensors' is not a valid input type" in str(info.value)
    assert "doubles" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("CLIPPER_PORT", "abc"),
        ("CLIPPER_PORT", "0"),
        ("CLIPPER_PORT", "70000"),
        ("CLIPPER_METRICS_PORT", "x"),
        ("CLIPPER_RPC_POLL_MS", "0"),
        ("CLIPPER_RPC_ACTIVITY_TIMEOUT_MS", "-5"),
        ("CLIPPER_RPC_SPIN_US", "-1"),
        ("CLIPPER_RPC_SPIN_US", "2000000"),
    ],
)
def test_bad_integers_are_refused(key: str, value: str) -> None:
    with pytest.raises(ContainerConfigError, match=key):
        ContainerSettings.from_environ({**BASE, key: value})


def test_empty_ready_file_disables_it() -> None:
    assert ContainerSettings.from_environ({**BASE, "CLIPPER_READY_FILE": ""}).ready_file is None


def test_string_to_input_type_matches_the_original_codes() -> None:
    assert [rpc.string_to_input_type(s) for s in ["bytes", " ints", "FLOATS", "double", "str", "x"]] == [
        0,
        1,
        2,
        3,
        4,
        -1,
    ]


def test_service_accessors() -> None:
    settings = ContainerSettings.from_environ({**BASE, "CLIPPER_INPUT_TYPE": "i", "CLIPPER_MODEL_PATH": "/m"})
    service = rpc.RPCService(read_config=False, settings=settings)
    assert service.get_input_type() == "integers"
    assert rpc.string_to_input_type(service.get_input_type()) == 1
    assert service.get_model_path() == "/m"


def test_service_without_model_path() -> None:
    service = rpc.RPCService(read_config=False, settings=ContainerSettings.from_environ(BASE))
    with pytest.raises(ContainerConfigError, match="CLIPPER_MODEL_PATH"):
        service.get_model_path()


def test_service_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPPER_MODEL_NAME", "env-model")
    monkeypatch.setenv("CLIPPER_MODEL_VERSION", "7")
    monkeypatch.setenv("CLIPPER_INPUT_TYPE", "bytes")
    service = rpc.RPCService()
    assert (service.settings.model_name, service.settings.model_version) == ("env-model", "7")
    assert service.get_input_type() == "bytes"


def test_service_exits_1_with_one_line_on_missing_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CLIPPER_MODEL_NAME", raising=False)
    monkeypatch.setenv("CLIPPER_MODEL_VERSION", "1")
    with pytest.raises(SystemExit) as info:
        rpc.RPCService()
    assert info.value.code == 1
    assert capsys.readouterr().err == "ERROR: CLIPPER_MODEL_NAME environment variable must be set\n"


def test_serve_refuses_a_model_without_the_predict_method() -> None:
    service = rpc.RPCService(
        read_config=False,
        settings=ContainerSettings.from_environ(
            {**BASE, "CLIPPER_INPUT_TYPE": "strings", "CLIPPER_READY_FILE": ""}
        ),
    )
    with pytest.raises(ContainerConfigError, match="predict_strings"):
        service.serve(object())


def test_serve_returns_at_once_when_stopped_before_it_starts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ready = tmp_path / "ready.check"
    settings = ContainerSettings.from_environ({**BASE, "CLIPPER_READY_FILE": str(ready)})
    service = rpc.RPCService(read_config=False, settings=settings)
    service.stop()
    service.serve(rpc.ModelContainerBase())
    assert ready.read_text() == "READY"
    assert service.server is None


def test_unwritable_ready_file_is_not_fatal(tmp_path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "missing-dir" / "ready.check"
    settings = ContainerSettings.from_environ({**BASE, "CLIPPER_READY_FILE": str(target)})
    service = rpc.RPCService(read_config=False, settings=settings)
    service.stop()
    service.serve(rpc.ModelContainerBase())
    assert not target.exists()
    assert "cannot write the readiness file" in caplog.text


def test_base_class_methods_raise_not_implemented() -> None:
    base = rpc.ModelContainerBase()
    for name in ["predict_ints", "predict_floats", "predict_doubles", "predict_bytes", "predict_strings"]:
        with pytest.raises(NotImplementedError):
            getattr(base, name)([])
