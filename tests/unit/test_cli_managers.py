"""Which container manager the ``clipper`` command's global options build (no cluster, no engine),
and how a deploy target ``PATH.py:FUNC`` is loaded."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import pytest

from clipper_admin import DockerContainerManager, LocalContainerManager
from clipper_admin.cli.closures import load_function
from clipper_admin.cli.managers import ClusterOptions, ManagerKind, StartPorts, make_manager
from clipper_admin.cli.output import CliError


def test_local_manager_gets_the_cluster_home_and_ports(tmp_path: Path) -> None:
    manager = make_manager(ClusterOptions(cluster_name="c1", clipper_home=str(tmp_path)),
                           StartPorts(1, 2, 3, 4))
    assert isinstance(manager, LocalContainerManager)
    assert (manager.query_port, manager.management_port, manager.rpc_port, manager.redis_port) == (1, 2, 3, 4)
    assert manager.paths.record_file == tmp_path / "clusters" / "c1" / "cluster.json"


def test_docker_manager_uses_the_host_network_when_asked() -> None:
    options = ClusterOptions(manager=ManagerKind.DOCKER, cluster_name="c2", host_network=True)
    manager = make_manager(options, StartPorts(11, 12, 13, 14))
    assert isinstance(manager, DockerContainerManager)  # the engine is contacted on first use only
    assert manager.docker_network == "host" and manager.cluster_name == "c2"
    assert (manager.clipper_query_port, manager.clipper_management_port) == (11, 12)
    bridge = make_manager(ClusterOptions(manager=ManagerKind.DOCKER, docker_network="mine"))
    assert isinstance(bridge, DockerContainerManager) and bridge.docker_network == "mine"


def test_a_deploy_target_is_loaded_by_value(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text("OFFSET = 10\n\ndef predict(xs):\n    return [str(OFFSET + x) for x in xs]\n",
                     encoding="utf-8")
    func = load_function(f"{model}:predict")
    assert func([1]) == ["11"]
    # Not importable by name, so cloudpickle carries the function and OFFSET with it.
    model.unlink()
    assert cloudpickle.loads(cloudpickle.dumps(func))([2]) == ["12"]


@pytest.mark.parametrize(
    ("target", "message"),
    [("model.py", "the model must be given as PATH.py:FUNCTION"),
     ("model.py:", "the model must be given as PATH.py:FUNCTION"),
     ("absent.py:predict", "absent.py: no such file"),
     ("broken.py:predict", "running broken.py failed: ZeroDivisionError: division by zero"),
     ("model.py:VALUE", "model.py defines no function 'VALUE'")],
)
def test_bad_deploy_targets_are_one_line_errors(
    target: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text("VALUE = 1\n", encoding="utf-8")
    (tmp_path / "broken.py").write_text("1 / 0\n", encoding="utf-8")
    with pytest.raises(CliError) as info:
        load_function(target)
    assert str(info.value).startswith(message)
