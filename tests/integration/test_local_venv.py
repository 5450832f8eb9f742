"""``pkgs_to_install`` when clipper_admin itself runs inside a virtual environment (issue 10.3).

The usual case (a project venv, the official python:3.11-slim, conda): the per-model venv is
made from a venv's interpreter, so ``--system-site-packages`` reaches only the *base*
interpreter's packages. The replica must still see what the user's venv has (cloudpickle, numpy,
their own packages) and the model's own ``pkgs_to_install``.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager
from tests.helpers import free_port, tiny_wheel

DRIVER = textwrap.dedent(
    """
    import json, sys, time
    import requests
    from clipper_admin import ClipperConnection, LocalContainerManager
    from clipper_admin.deployers import python as python_deployer

    home, wheel, *ports = sys.argv[1:]
    q, m, r, rp = map(int, ports)
    conn = ClipperConnection(LocalContainerManager(
        cluster_name="venv-test", clipper_home=home, query_port=q, management_port=m,
        rpc_port=r, redis_port=rp))

    def model(xs):
        import clipper_parent_probe, clipper_model_probe, cloudpickle, numpy
        return [f"{clipper_parent_probe.VALUE}+{clipper_model_probe.VALUE}" for _ in xs]

    conn.start_clipper()
    try:
        python_deployer.create_endpoint(
            conn, "venv-app", "doubles", model, slo_micros=5_000_000, pkgs_to_install=[wheel])
        url = f"http://{conn.get_query_addr()}/venv-app/predict"
        deadline = time.monotonic() + 60
        while True:
            reply = requests.post(url, json={"input": [1.0]}, timeout=30).json()
            if not reply.get("default") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print("REPLY " + json.dumps(reply))
    finally:
        conn.stop_all()
    """
)


@pytest.mark.slow
def test_pkgs_to_install_from_inside_a_virtual_environment(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    parent = tmp_path / "project-venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(parent)],
                   check=True, timeout=120)
    parent_python = parent / "bin" / "python"
    # The project venv has what this test runs with (clipper's dependencies). Where this
    # interpreter is itself a venv (python:3.11-slim's /usr/local), --system-site-packages
    # alone would not show them: add its package dirs as the user's own installs would be.
    parent_site = subprocess.run(
        [str(parent_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    (Path(parent_site) / "_test_runner_packages.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8"
    )
    # A package only the user's venv has (not the base interpreter the model venv inherits).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(parent_python), "install", "--no-index",
         "--no-deps", "--quiet", str(tiny_wheel(tmp_path, "clipper_parent_probe", "parent"))],
        check=True, timeout=300,
    )
    model_wheel = tiny_wheel(tmp_path, "clipper_model_probe", "model")
    ports = [str(free_port()) for _ in range(4)]
    result = subprocess.run(
        [str(parent_python), "-c", DRIVER, str(tmp_path / "home"), str(model_wheel), *ports],
        env=subprocess_env, capture_output=True, text=True, timeout=300,
    )
    replies = [line for line in result.stdout.splitlines() if line.startswith("REPLY ")]
    logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in (tmp_path / "home").rglob("*.log"))
    assert replies, f"driver failed:\n{result.stdout}\n{result.stderr}\n{logs}"
    reply = json.loads(replies[0][len("REPLY "):])
    assert reply.get("output") == "parent+model", f"{reply}\n{logs}"


@pytest.mark.parametrize("option", ["--index-url=https://example.invalid/simple", "-r", "--no-index"])
def test_pip_options_in_pkgs_to_install_are_refused(tmp_path: Path, option: str) -> None:
    conn = ClipperConnection(LocalContainerManager(cluster_name="unused", clipper_home=str(tmp_path)))
    conn.connected = True  # build_model needs no running cluster to validate its arguments
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with pytest.raises(ClipperException, match="is a pip option"):
        conn.build_model("m", "1", str(model_dir), "clipper/python311-closure-container:0.4.1",
                         pkgs_to_install=["numpy", option])
    assert not (tmp_path / "clusters" / "unused" / "models").exists()
