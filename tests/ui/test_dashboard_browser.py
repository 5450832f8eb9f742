"""The dashboard in a real browser (Debian's chromium, headless, driven by playwright).

A local cluster (LocalContainerManager) with one app and one deployed closure, queried over HTTP;
then the page must list the app and the model, show numbers equal to the query frontend's
``/metrics`` (counters exactly, latency percentiles inside the histogram bucket that holds them),
draw its plots, and a screenshot is written under the test's tmp dir. ``make test-ui`` installs
chromium (apt) and playwright (pip) first; no browser is ever downloaded.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from clipper_admin import ClipperConnection, LocalContainerManager
from clipper_admin.deployers import python as python_deployer
from tests.helpers import free_port

pytestmark = [pytest.mark.ui, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
APP = "dash-app"
MODEL = "dash-model"
BURSTS = 3
QUERIES_PER_BURST = 20
SLO_MICROS = 10_000_000  # generous: every query is answered by the model, none by default
ADMIN_TOKEN = "ui-test-token"


@dataclass
class Deployed:
    conn: ClipperConnection
    admin: str
    query: str
    tmp: Path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("clipper_home")
    manager = LocalContainerManager(
        cluster_name=f"ui-{uuid.uuid4().hex[:8]}",
        query_port=free_port(),
        management_port=free_port(),
        rpc_port=free_port(),
        redis_port=free_port(),
        clipper_home=str(home),
        admin_token=ADMIN_TOKEN,
    )
    conn = ClipperConnection(manager)
    conn.start_clipper()
    try:
        conn.register_application(APP, "doubles", "-1.0", SLO_MICROS)
        python_deployer.deploy_python_closure(
            conn, name=MODEL, version=1, input_type="doubles",
            func=lambda xs: [str(sum(x)) for x in xs],
        )
        conn.link_model_to_app(APP, MODEL)
        query = f"http://{conn.get_query_addr()}"
        deadline = time.monotonic() + 60
        sent = 0
        while True:  # the replica connects a moment after deploy returns
            reply = requests.post(f"{query}/{APP}/predict", json={"input": [1.0, 2.0]}, timeout=30).json()
            sent += 1
            if not reply.get("default") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert not reply.get("default"), reply
        yield Deployed(conn, f"http://{manager.get_admin_addr()}", query, tmp_path_factory.mktemp("ui"))
    finally:
        conn.stop_all()


def scrape(query: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{query}/metrics", headers={"Accept": "text/plain"}, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def bucket_bounds(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
                  label: tuple[str, str], q: float) -> tuple[float, float]:
    """The (lower, upper] bucket bounds, in ms, that hold the q-quantile."""
    buckets = sorted(
        (math.inf if dict(labels)["le"] == "+Inf" else float(dict(labels)["le"]), value)
        for (sample, labels), value in samples.items()
        if sample == f"{name}_bucket" and label in labels
    )
    rank = q * buckets[-1][1]
    lower = 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower * 1000, bound * 1000
        lower = bound
    raise AssertionError("no bucket holds the quantile")


def cell(page, selector: str, attribute: str = "data-value") -> str:  # type: ignore[no-untyped-def]
    value = page.locator(selector).get_attribute(attribute)
    assert value is not None, selector
    return value


def test_dashboard_shows_the_cluster_and_the_numbers_of_metrics(deployed: Deployed) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("chromium is not installed; `make test-ui` installs Debian's package")
    from playwright.sync_api import sync_playwright

    # Without the token the page is refused; the token in the address sets the cookie.
    assert requests.get(f"{deployed.admin}/dashboard", timeout=10).status_code == 401
    app_label = ("app", APP)
    model_label = ("model", f"{MODEL}:1")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 700})
            page.goto(f"{deployed.admin}/dashboard?token={ADMIN_TOKEN}")
            assert page.url == f"{deployed.admin}/dashboard"  # the token left the address bar
            app_row = f'tr[data-app="{APP}"]'
            page.wait_for_selector(app_row, timeout=30_000)
            # Traffic while the page is open, in bursts a sample interval apart, half of the
            # inputs repeated (cache hits).
            for burst in range(BURSTS):
                for i in range(QUERIES_PER_BURST):
                    requests.post(
                        f"{deployed.query}/{APP}/predict", json={"input": [float(i % 10), 1.0]}, timeout=30
                    )
                if burst < BURSTS - 1:
                    time.sleep(2.5)
            requests_total = scrape(deployed.query)[("clipper_app_requests_total", (app_label,))]
            assert requests_total >= BURSTS * QUERIES_PER_BURST
            # Wait for a sample taken after the queries (the sampler runs every 2 s).
            page.wait_for_function(
                "([sel, n]) => { const c = document.querySelector(sel + ' [data-field=requests]');"
                " return c && Number(c.dataset.value) === n; }",
                arg=[app_row, requests_total], timeout=30_000,
            )
            # The plots show the bursts.
            qps_plot = f"{app_row} svg[data-series=qps]"
            assert int(cell(page, qps_plot, "data-points")) >= 2
            assert float(cell(page, qps_plot, "data-max")) > 0
            samples = scrape(deployed.query)  # no traffic since: equal to what the page sampled
            assert page.locator(f"{app_row} [data-field=name]").inner_text() == APP
            assert page.locator(f"{app_row} [data-field=linked_models]").inner_text() == MODEL
            assert float(cell(page, f"{app_row} [data-field=requests]")) == requests_total
            assert float(cell(page, f"{app_row} [data-field=slo_misses]")) == samples[
                ("clipper_app_default_predictions_total", (app_label,))
            ]
            for q, attribute in ((0.5, "data-p50"), (0.99, "data-p99")):
                shown = float(cell(page, f"{app_row} [data-field=latency_total]", attribute))
                low, high = bucket_bounds(samples, "clipper_app_prediction_latency_seconds", app_label, q)
                assert low <= shown <= high, (q, shown, low, high)

            model_row = f'tr[data-model-id="{MODEL}:1"]'
            assert page.locator(f"{model_row} [data-field=version]").inner_text() == "1"
            assert page.locator(f"{model_row} [data-field=health]").inner_text() == "ok"
            assert cell(page, f"{model_row} [data-field=replicas]") == "1"
            predictions = samples[("clipper_model_predictions_total", (model_label,))]
            assert float(cell(page, f"{model_row} [data-field=predictions]")) == predictions
            lookups = {
                result: samples[("clipper_model_cache_lookups_total", (model_label, ("result", result)))]
                for result in ("hit", "miss", "coalesced")
            }
            assert lookups["hit"] > 0  # the repeated inputs
            hit_ratio = float(cell(page, f"{model_row} [data-field=cache_hit_ratio]"))
            assert hit_ratio == pytest.approx(lookups["hit"] / sum(lookups.values()), rel=1e-9)
            batch_sum = samples[("clipper_model_batch_size_sum", (model_label,))]
            batch_count = samples[("clipper_model_batch_size_count", (model_label,))]
            mean_batch = float(cell(page, f"{model_row} [data-field=batch_size]", "data-total"))
            assert mean_batch == pytest.approx(batch_sum / batch_count, rel=1e-9)
            assert float(cell(page, f"{model_row} svg[data-series=throughput]", "data-max")) > 0
            assert float(cell(page, f"{model_row} svg[data-series=mean_batch_size]", "data-max")) >= 1
            assert page.evaluate("document.body.dataset.error") == ""

            screenshot = deployed.tmp / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
        finally:
            browser.close()
