"""Helpers for the R tests (``make test-r``): R itself, Rclipper, and models built from R.

Every test here is marked ``r`` (excluded from plain ``make test``); ``make test-r`` installs R
and Rclipper from Debian's packages first. The R code of the documentation's example is kept
verbatim in ``DOC_PRED_FN``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.r

# The documentation's example prediction function (Rclipper section), verbatim.
DOC_PRED_FN = """\
#' Given a list of vector inputs,
#' outputs a list containing the
#' length of each input vector as a string
pred_fn = function(inputs) {
return(lapply(inputs, function(input) {
return(as.character(length(input)))
}))
}
"""

DEPLOY_LINE = re.compile(r"^conn\.(?:deploy_model|build_and_deploy_model)\(.*\)$", re.MULTILINE)


@dataclass(frozen=True)
class VectorCase:
    """One of the documentation's input kinds: the sample input given to build_model, the
    Clipper input type it implies, a query body and what the example function answers."""

    key: str
    sample_input: str
    input_type: str
    body: dict[str, object]
    output: object


# pred_fn answers the length of each input: 4 ints, 3 doubles, 12 bytes, 1 string (a
# length-1 character vector) and 11 for mtcars (a data frame's length is its column count).
VECTOR_CASES = (
    VectorCase("ints", "as.integer(c(1,2,3))", "ints", {"input": [1, 2, 3, 4]}, 4),
    VectorCase("doubles", "c(1.5, 2.5)", "doubles", {"input": [1.0, 2.0, 3.0]}, 3),
    VectorCase("bytes", 'charToRaw("clipper")', "bytes", {"input": "Y2xpcHBlciB0ZXh0"}, 12),
    VectorCase("strings", '"input text"', "strings", {"input": "input text"}, 1),
)


def rscript() -> str:
    path = shutil.which("Rscript")
    if path is None:
        pytest.fail("Rscript is not installed; run `make install-r` (or `make test-r`, which does)")
    return path


def run_r(code: str, tmp_path: Path, *, env: dict[str, str] | None = None, timeout_s: float = 300) -> str:
    """Run R code with Rscript; return its stdout, failing the test with stderr on an error."""
    script = tmp_path / f"script-{abs(hash(code))}.R"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [rscript(), "--no-save", "--no-restore", str(script)],
        capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"Rscript failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def deploy_line(output: str) -> str:
    """The ``conn.deploy_model(...)`` / ``conn.build_and_deploy_model(...)`` line build_model printed."""
    lines = DEPLOY_LINE.findall(output)
    assert len(lines) == 1, output
    return lines[0]


def run_deploy_line(line: str, conn: object, num_replicas: int = 1) -> None:
    """Execute the printed line from Python, as the documentation tells the user to."""
    exec(line.replace("<num_container_replicas>", str(num_replicas)), {"conn": conn})


def build_script(name: str, sample_input: str, *, local: bool, pred_fn: str = DOC_PRED_FN) -> str:
    """R code: the example function, then build_model as the documentation writes it."""
    extra = ", local = TRUE" if local else ""
    return (
        f"library(Rclipper)\n{pred_fn}\n"
        f'Rclipper::build_model("{name}", "1", pred_fn, sample_input = {sample_input}{extra})\n'
    )


def query(conn: object, app: str, body: dict[str, object]) -> dict[str, object]:
    import requests

    address = conn.get_query_addr()  # type: ignore[attr-defined]
    response = requests.post(f"http://{address}/{app}/predict", json=body, timeout=60)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def deploy_and_query_examples(conn: object, tmp_path: Path, *, local: bool, prefix: str) -> None:
    """Build the documentation's example for each vector input type and for a data frame (a
    JSON string), deploy each with the line build_model printed, link it to an app and query it."""
    env = dict(__import__("os").environ, CLIPPER_HOME=str(tmp_path / "r-home"))
    mtcars_json = tmp_path / "mtcars.json"
    cases = [*VECTOR_CASES, VectorCase("data-frame", "mtcars", "strings", {}, 11)]
    for case in cases:
        name = f"{prefix}-{case.key}"
        code = build_script(name, case.sample_input, local=local)
        if case.key == "data-frame":
            code += f'writeLines(jsonlite::toJSON(mtcars), "{mtcars_json}")\n'
        output = run_r(code, tmp_path, env=env)
        line = deploy_line(output)
        assert f'"{name}", "1", "{case.input_type}"' in line
        run_deploy_line(line, conn)
        app = f"app-{name}"
        conn.register_application(app, case.input_type, "-1.0", 20_000_000)  # type: ignore[attr-defined]
        conn.link_model_to_app(app_name=app, model_name=name)  # type: ignore[attr-defined]
        body = case.body or {"input": mtcars_json.read_text().strip()}
        result = query(conn, app, body)
        assert result["default"] is False, result
        assert result["output"] == case.output, (case.key, result)
