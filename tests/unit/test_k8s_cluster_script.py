"""The test cluster's start script: while it waits for a component it started, a live component is
never reported dead (whatever its cmdline shows mid-exec), and a dead one is, with its log."""

from __future__ import annotations

import subprocess
from pathlib import Path

CLUSTER_SCRIPT = Path(__file__).resolve().parents[1] / "k8s" / "cluster" / "cluster.sh"


def run_with_helpers(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in bash with cluster.sh's helper functions, its state under ``tmp_path``."""
    state = tmp_path / "state"
    script = f"""
set -euo pipefail
STATE={state}; LOGS=$STATE/logs; PIDS=$STATE/pids
mkdir -p "$LOGS" "$PIDS"
log() {{ printf '[k8s-cluster] %s\\n' "$*" >&2; }}
die() {{ log "ERROR: $*"; exit 1; }}
eval "$(sed -n '/^pid_of() {{/,/^}}/p; /^start() {{/,/^}}/p; /^wait_for() {{/,/^}}/p' {CLUSTER_SCRIPT})"
{body}
"""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)


def test_a_live_component_whose_cmdline_does_not_name_the_state_is_waited_for(tmp_path: Path) -> None:
    # Its cmdline never names the state directory, as a component's does not before its exec.
    ready = tmp_path / "ready"
    result = run_with_helpers(
        tmp_path, f'start slow sh -c "sleep 1; touch {ready}; sleep 30"\n'
        f'wait_for "the ready file" 20 slow test -e {ready}\n'
        'kill "$(cat "$PIDS/slow")"\necho waited',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "waited"


def test_a_component_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    result = run_with_helpers(
        tmp_path, 'start broken sh -c "echo cannot bind; exit 1"\n'
        'wait_for "its socket" 20 broken test -S "$STATE/never.sock"',
    )
    assert result.returncode == 1
    assert "broken exited while waiting for its socket" in result.stderr
    assert "cannot bind" in result.stderr
