"""``wait_for_containers`` over stand-in containers (no engine): which states end the wait."""

from __future__ import annotations

from typing import Any

import pytest

from clipper_admin.docker import docker_api_utils as api
from clipper_admin.exceptions import ClipperException


class StandInContainer:
    """``reload()`` steps through the given ``docker inspect`` snapshots, keeping the last."""

    def __init__(self, name: str, snapshots: list[dict[str, Any]]) -> None:
        self.id = self.name = name
        self.snapshots = snapshots
        self.attrs: dict[str, Any] = {}

    def reload(self) -> None:
        self.attrs = self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0]

    def logs(self, tail: int) -> bytes:
        return b"Traceback: the frontend could not start"


def inspect(status: str, restarts: int = 0, exit_code: int = 0, health: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"Status": status, "ExitCode": exit_code}
    if health is not None:
        state["Health"] = {"Status": health}
    return {"State": state, "RestartCount": restarts}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.time, "sleep", lambda _: None)


def test_healthy_containers_end_the_wait() -> None:
    c = StandInContainer("qf", [inspect("running", health="starting"), inspect("running", health="healthy")])
    api.wait_for_containers([c], timeout_s=5)  # type: ignore[list-item]


@pytest.mark.parametrize(
    "snapshot",
    [
        inspect("exited", exit_code=1),
        # With a restart policy an exit while starting shows as "restarting", or as running
        # again with a restart counted: either way it failed to start.
        inspect("restarting", exit_code=1),
        inspect("running", restarts=1, exit_code=1, health="starting"),
        inspect("running", health="unhealthy"),
    ],
)
def test_a_container_that_failed_while_starting_fails_at_once_with_its_log(snapshot: dict[str, Any]) -> None:
    c = StandInContainer("qf-1", [inspect("running", health="starting"), snapshot])
    with pytest.raises(ClipperException, match="qf-1 failed to start") as info:
        api.wait_for_containers([c], timeout_s=3600)  # type: ignore[list-item]
    assert "the frontend could not start" in str(info.value)
