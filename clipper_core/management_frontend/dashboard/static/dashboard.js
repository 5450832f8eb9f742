// Clipper dashboard: polls /dashboard/api/cluster and /dashboard/api/metrics and redraws.
// No dependencies: tables from DOM calls (never innerHTML with data), sparklines as SVG.
"use strict";

const REFRESH_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, String(value));
  }
  for (const child of children || []) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "\u2014";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toFixed(digits === undefined ? 2 : digits);
}

function pct(value) {
  return value === null || value === undefined ? "\u2014" : (100 * value).toFixed(1) + "%";
}

// A number cell; data-value keeps the raw number for scripts and tests.
function num(field, value, text) {
  return el("td", {class: "num", "data-field": field, "data-value": value === null ? "" : value},
            [text === undefined ? fmt(value) : text]);
}

function pair(field, a, b) {
  return el("td", {class: "num", "data-field": field, "data-p50": a === null ? "" : a,
                   "data-p99": b === null ? "" : b}, [fmt(a) + " / " + fmt(b)]);
}

// Every plot shares one time axis: from the oldest sample shown to the latest.
let timeDomain = [0, 0];

function sparkline(field, times, values) {
  const width = 120, height = 28, pad = 2;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("data-series", field);
  const points = [];
  (values || []).forEach((v, i) => { if (v !== null && v !== undefined) points.push([times[i], v]); });
  svg.setAttribute("data-points", String(points.length));
  if (points.length) {
    const [t0, t1] = timeDomain;
    const peak = Math.max(...points.map(p => p[1]));
    const top = peak || 1;
    svg.setAttribute("data-max", String(peak));
    const x = t => pad + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (width - 2 * pad);
    const y = v => height - pad - (v / top) * (height - 2 * pad - 8);
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", points.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
    svg.append(line);
    if (points.length === 1) {  // a lone point draws no line: a dot
      const dot = document.createElementNS(SVG_NS, "circle");
      dot.setAttribute("cx", x(points[0][0]).toFixed(1));
      dot.setAttribute("cy", y(points[0][1]).toFixed(1));
      dot.setAttribute("r", "2");
      svg.append(dot);
    }
    const label = document.createElementNS(SVG_NS, "text");
    label.setAttribute("x", "2");
    label.setAttribute("y", "8");
    label.textContent = "max " + fmt(peak);
    svg.append(label);
  }
  return el("td", {}, [svg]);
}

function appRow(app, m) {
  const total = m ? m.total : {}, win = m ? m.window : {}, series = m ? m.series : {t: []};
  return el("tr", {"data-app": app.name}, [
    el("td", {"data-field": "name"}, [app.name]),
    el("td", {}, [app.input_type]),
    num("slo_ms", app.latency_slo_micros / 1000),
    el("td", {"data-field": "linked_models"}, [app.linked_models.join(", ") || "\u2014"]),
    num("requests", total.requests ?? null),
    num("qps", win.qps ?? null),
    pair("latency_window", win.p50_ms ?? null, win.p99_ms ?? null),
    pair("latency_total", total.p50_ms ?? null, total.p99_ms ?? null),
    num("slo_misses", total.slo_misses ?? null,
        total.slo_misses === undefined ? "\u2014" : `${fmt(total.slo_misses)} (${pct(total.slo_miss_ratio)})`),
    sparkline("qps", series.t, series.qps),
    sparkline("p99_ms", series.t, series.p99_ms),
  ]);
}

function modelRows(model, metrics) {
  return model.versions.map((v, index) => {
    const m = metrics[v.id], total = m ? m.total : {}, win = m ? m.window : {};
    const series = m ? m.series : {t: []};
    const badges = [el("span", {class: "badge " + v.health, "data-field": "health"}, [v.health])];
    if (v.is_current) badges.push(" ", el("span", {class: "badge current"}, ["current"]));
    const replicas = v.replicas.map(r => r.replica_id).join(", ");
    return el("tr", {"data-model": model.name, "data-version": v.version, "data-model-id": v.id}, [
      el("td", {"data-field": "name"}, [index === 0 ? model.name : ""]),
      el("td", {"data-field": "version"}, [v.version]),
      el("td", {}, badges),
      el("td", {"data-field": "replicas", "data-value": v.replicas.length},
         [v.replicas.length ? `${v.replicas.length} (#${replicas})` : "none"]),
      num("predictions", total.predictions ?? null),
      num("throughput", win.throughput ?? null),
      pair("latency_window", win.p50_ms ?? null, win.p99_ms ?? null),
      pair("latency_total", total.p50_ms ?? null, total.p99_ms ?? null),
      num("cache_hit_ratio", total.cache_hit_ratio ?? null,
          total.cache_lookups === undefined ? "\u2014"
            : `${pct(total.cache_hit_ratio)} of ${fmt(total.cache_lookups)}`),
      el("td", {class: "num", "data-field": "batch_size", "data-window": win.mean_batch_size ?? "",
                "data-total": total.mean_batch_size ?? ""},
         [fmt(win.mean_batch_size ?? null) + " / " + fmt(total.mean_batch_size ?? null)]),
      num("queue", total.queue_length ?? null,
          m ? `${fmt(total.queue_length)} / ${fmt(total.inflight_batches)}` : "\u2014"),
      sparkline("throughput", series.t, series.throughput),
      sparkline("p99_ms", series.t, series.p99_ms),
      sparkline("mean_batch_size", series.t, series.mean_batch_size),
    ]);
  });
}

function showFrontend(frontend) {
  const badge = document.getElementById("frontend");
  if (!frontend.configured) {
    badge.className = "badge idle";
    badge.textContent = "no query frontend address: metrics off";
    return;
  }
  const label = frontend.frontends.length > 1 ? "query frontends" : "query frontend";
  if (frontend.reachable) {
    badge.className = "badge " + (frontend.health === "ok" ? "ok" : "down");
    badge.textContent = `${label} ${frontend.address}: ${frontend.health}`;
  } else {
    const up = frontend.frontends.filter(f => f.reachable).length;
    badge.className = "badge unreachable";
    badge.textContent = `${label}: ${up}/${frontend.frontends.length} reachable (${frontend.error})`;
  }
}

async function getJson(path) {
  const response = await fetch(path, {credentials: "same-origin", cache: "no-store"});
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

async function refresh() {
  const [state, metrics] = await Promise.all([getJson("/dashboard/api/cluster"),
                                              getJson("/dashboard/api/metrics")]);
  showFrontend(state.query_frontend);
  const times = [...Object.values(metrics.apps), ...Object.values(metrics.models)]
    .flatMap(entry => entry.series.t);
  timeDomain = times.length ? [Math.min(...times), Math.max(...times)] : [0, 0];
  const cluster = state.cluster;
  document.querySelector("#apps tbody").replaceChildren(
    ...cluster.apps.map(app => appRow(app, metrics.apps[app.name])));
  document.getElementById("no-apps").hidden = cluster.apps.length > 0;
  document.querySelector("#models tbody").replaceChildren(
    ...cluster.models.flatMap(model => modelRows(model, metrics.models)));
  document.getElementById("no-models").hidden = cluster.models.length > 0;
  const updated = document.getElementById("updated");
  updated.textContent = metrics.sampled_at
    ? "sampled " + new Date(metrics.sampled_at).toLocaleTimeString() : "no samples yet";
  updated.dataset.sampledAt = metrics.sampled_at ?? "";
  document.getElementById("legend").textContent =
    `Rates and "p50 / p99" cover the last ${fmt(metrics.window_s, 0)} s; plots show the last ` +
    `${fmt(state.query_frontend.horizon_s ?? 0, 0)} s, one point per sample; latencies from ` +
    "the query frontend's histogram buckets (as Prometheus' histogram_quantile).";
  document.body.dataset.refreshed = String(Date.now());
}

async function loop() {
  try {
    await refresh();
    document.body.dataset.error = "";
  } catch (error) {
    document.body.dataset.error = String(error);
    document.getElementById("updated").textContent = "refresh failed: " + error.message;
  }
  setTimeout(loop, REFRESH_MS);
}

loop();
