"""The ``clipper`` command's Typer app: one function per subcommand, over ``ClipperConnection``."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Final

import requests
import typer

from clipper_admin.cli import logs as cluster_logs
from clipper_admin.cli.closures import load_function
from clipper_admin.cli.display import ProgressDisplay
from clipper_admin.cli.managers import ClusterOptions, ManagerKind, StartPorts, connect, make_manager
from clipper_admin.cli.output import CliError, Output, server_message
from clipper_admin.cli.status import app_entry, apps_of, cluster_status, models_of
from clipper_admin.clipper_admin import DEFAULT_PREDICTION_CACHE_SIZE_BYTES, ClipperConnection
from clipper_admin.exceptions import ClipperException
from clipper_admin.local import LocalContainerManager

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "app", "main"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
_PREDICT_TIMEOUT_S: Final = 60.0

EXIT_CODES_HELP: Final = (
    "Exit status: 0 success; 1 the operation failed (one line on stderr, `error: ...`, in the "
    "server's words; a replica that failed to start adds its last log lines, indented); 2 bad "
    "usage (unknown option, missing argument); 130 interrupted (Ctrl-C). Results go to stdout "
    "(tables, or JSON with --json); progress and warnings to stderr."
)

app = typer.Typer(
    name="clipper",
    help="Run and drive a Clipper cluster: local processes (default), Docker or Kubernetes.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]


class _State:
    """The global options, kept on the Click context for the subcommands."""

    def __init__(self, options: ClusterOptions, as_json: bool, level: int) -> None:
        self.options = options
        self.as_json = as_json
        self.level = level


@app.callback()
def _global_options(
    ctx: typer.Context,
    manager: Annotated[ManagerKind, typer.Option(
        "--manager", "-m", envvar="CLIPPER_MANAGER", help="Where the cluster runs.")] = ManagerKind.LOCAL,
    cluster: Annotated[str, typer.Option(
        "--cluster", "-c", envvar="CLIPPER_CLUSTER", help="Cluster name.")] = "default-cluster",
    clipper_home: Annotated[str | None, typer.Option(
        envvar="CLIPPER_HOME", help="local: root of cluster records (default ~/.clipper).")] = None,
    host_network: Annotated[bool, typer.Option(
        help="docker/kubernetes: host networking for every container or pod.")] = False,
    docker_network: Annotated[str, typer.Option(help="docker: network name.")] = "clipper_network",
    namespace: Annotated[str, typer.Option(
        envvar="CLIPPER_NAMESPACE", help="kubernetes: namespace.")] = "default",
    kube_config: Annotated[str | None, typer.Option(help="kubernetes: kubeconfig file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON (for scripts).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug log lines.")] = False,
) -> None:
    options = ClusterOptions(
        manager=manager, cluster_name=cluster, clipper_home=clipper_home, host_network=host_network,
        docker_network=docker_network, namespace=namespace, kube_config=kube_config,
    )
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    ctx.obj = _State(options, as_json, level)


@contextmanager
def _command(ctx: typer.Context, as_json: bool, long_running: bool = False) -> Iterator[Output]:
    """Progress on stderr while the command runs (commands that start or stop something; the
    others show warnings only, unless --verbose); a failure becomes one line and exit status 1."""
    state: _State = ctx.obj
    out = Output(as_json or state.as_json)
    level = state.level if long_running or state.level < logging.INFO else max(state.level, logging.WARNING)
    try:
        with ProgressDisplay(out.stderr, level) as display:
            out.before_output = display.finish
            yield out
    except (ClipperException, CliError, requests.RequestException, OSError) as exc:
        out.error(exc)
        raise typer.Exit(EXIT_ERROR) from exc
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _options(ctx: typer.Context) -> ClusterOptions:
    return ctx.obj.options  # type: ignore[no-any-return]


def _addresses(conn: ClipperConnection) -> dict[str, str]:
    return {"query": conn.cm.get_query_addr(), "management": conn.cm.get_admin_addr(),
            "metrics": conn.cm.get_metric_addr()}


# -- cluster ------------------------------------------------------------------------------------


@app.command()
def start(
    ctx: typer.Context,
    query_port: Annotated[int, typer.Option(help="Preferred query frontend port.")] = 1337,
    management_port: Annotated[int, typer.Option(help="Preferred management port.")] = 1338,
    rpc_port: Annotated[int, typer.Option(help="Preferred RPC port for model replicas.")] = 7000,
    redis_port: Annotated[int, typer.Option(help="Preferred Redis port.")] = 6379,
    cache_size: Annotated[int, typer.Option(help="Prediction cache size in bytes.")] =
        DEFAULT_PREDICTION_CACHE_SIZE_BYTES,
    admin_token: Annotated[str | None, typer.Option(
        envvar="CLIPPER_ADMIN_TOKEN", help="Require this bearer token on the management API.")] = None,
    frontends: Annotated[int, typer.Option(min=1, help="Query frontends (num_frontend_replicas).")] = 1,
    as_json: JsonOption = False,
) -> None:
    """Start a cluster (Redis, management and query frontends) and print its addresses."""
    with _command(ctx, as_json, long_running=True) as out:
        options = _options(ctx)
        if admin_token is not None:
            options = dataclasses.replace(options, admin_token=admin_token)
        ports = StartPorts(query_port, management_port, rpc_port, redis_port)
        conn = ClipperConnection(make_manager(options, ports))
        conn.start_clipper(cache_size=cache_size, num_frontend_replicas=frontends)
        addresses = _addresses(conn)
        if out.as_json:
            out.json({"cluster": options.cluster_name, "manager": options.manager.value, **addresses})
        else:
            out.table(f"Cluster {options.cluster_name} ({options.manager.value}) is running",
                      ["endpoint", "address"], list(addresses.items()))


@app.command()
def stop(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Stop the cluster: every model replica, both frontends and Redis."""
    with _command(ctx, as_json, long_running=True) as out:
        options = _options(ctx)
        manager = make_manager(options)
        if isinstance(manager, LocalContainerManager) and not manager.paths.record_file.exists():
            # Nothing to stop is not a failure: a script may stop what it is unsure it started.
            out.result({"cluster": options.cluster_name, "stopped": False},
                       f"No local cluster {options.cluster_name} is running")
            return
        ClipperConnection(manager).stop_all()
        out.result({"cluster": options.cluster_name, "stopped": True},
                   f"Stopped cluster {options.cluster_name}")


@app.command()
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Addresses, applications (policy, SLO, default output, linked model) and models (versions,
    current version, replicas and their state)."""
    with _command(ctx, as_json) as out:
        options = _options(ctx)
        report = cluster_status(connect(options), options.manager.value)
        if out.as_json:
            out.json(report)
            return
        out.table(f"Cluster {report['cluster']} ({report['manager']})", ["endpoint", "address"],
                  list(report["addresses"].items()))
        _print_apps(out, report["apps"])
        _print_models(out, report["models"])


def _print_apps(out: Output, apps: list[dict[str, Any]]) -> None:
    out.table("Applications", ["name", "input type", "policy", "SLO (ms)", "default output", "linked model",
                               "weights"],
              [(a["name"], a["input_type"], _policy_text(a), f"{a['latency_slo_micros'] / 1000:g}",
                a["default_output"], ", ".join(a["linked_models"]) or None, _weights_text(a))
               for a in apps])


def _policy_text(app: dict[str, Any]) -> str:
    """The policy, with exp4's confidence threshold and the feedback rounds learned from."""
    notes = []
    if app.get("confidence_threshold") is not None:
        notes.append(f"threshold {app['confidence_threshold']:g}")
    if app.get("feedback_rounds"):
        notes.append(f"{app['feedback_rounds']} feedback rounds")
    return f"{app['policy']} ({', '.join(notes)})" if notes else str(app["policy"])


def _weights_text(app: dict[str, Any]) -> str | None:
    """Each linked model's share of the weight, largest first, then by name (None on the default
    policy)."""
    weights = app.get("selection_weights")
    if not weights:
        return None
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{model} {share:.2f}" for model, share in ranked)


def _print_models(out: Output, models: list[dict[str, Any]]) -> None:
    rows = []
    for model in models:
        for version in model["versions"]:
            states: dict[str, int] = {}
            for replica in version["replica_states"]:
                states[replica["state"]] = states.get(replica["state"], 0) + 1
            rows.append((model["name"], version["version"], "*" if version["is_current"] else "",
                         model["input_type"], version["replicas"],
                         ", ".join(f"{n} {s}" for s, n in states.items()) or None))
    out.table("Models (* current version)", ["name", "version", "current", "input type", "replicas", "state"],
              rows)


@app.command()
def apps(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the applications."""
    with _command(ctx, as_json) as out:
        found = apps_of(connect(_options(ctx)))
        if out.as_json:
            out.json(found)
        else:
            _print_apps(out, found)


@app.command()
def models(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the models with their versions and replicas."""
    with _command(ctx, as_json) as out:
        found = models_of(connect(_options(ctx)))
        if out.as_json:
            out.json(found)
        else:
            _print_models(out, found)


# -- applications -------------------------------------------------------------------------------

PolicyOption = Annotated[str | None, typer.Option(
    "--policy", help="Selection policy: DefaultOutputSelectionPolicy, exp3, exp4 or ab.")]
ThresholdOption = Annotated[float | None, typer.Option(
    "--threshold", help="exp4: answer the default output below this confidence (0..1; default 0.5).")]
WeightsOption = Annotated[str | None, typer.Option(
    "--weights", help='ab: the traffic split as a JSON object, e.g. \'{"v1": 9, "v2": 1}\'.')]


def _policy_weights(weights_json: str | None) -> dict[str, float] | None:
    if weights_json is None:
        return None
    try:
        weights = json.loads(weights_json)
    except ValueError as exc:
        raise CliError(f"--weights is not JSON: {exc}") from exc
    if not isinstance(weights, dict):
        raise CliError('--weights must be a JSON object of model name -> weight, e.g. \'{"v1": 9, "v2": 1}\'')
    return weights


def _app_result(out: Output, conn: ClipperConnection, app_name: str, message: str) -> None:
    info = conn.get_app_info(app_name)
    if info is None:
        raise CliError(f"application {app_name} disappeared")
    entry = app_entry(info)
    weights = _weights_text(entry)
    out.result(entry, f"{message}: {_policy_text(entry)}" + (f"; weights {weights}" if weights else ""))


@app.command()
def register(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    input_type: Annotated[str, typer.Option(help="integers, floats, doubles, bytes or strings.")],
    default_output: Annotated[str, typer.Option(help="The answer when no model answers in time.")] = "None",
    slo_micros: Annotated[int, typer.Option(help="Latency objective in microseconds.")] = 3_000_000,
    policy: PolicyOption = None,
    threshold: ThresholdOption = None,
    weights_json: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an application (POST /APP/predict), optionally on a selection policy."""
    with _command(ctx, as_json) as out:
        weights = _policy_weights(weights_json)
        conn = connect(_options(ctx))
        conn.register_application(app_name, input_type, default_output, slo_micros,
                                  selection_policy=policy, confidence_threshold=threshold,
                                  policy_weights=weights)
        _app_result(out, conn, app_name, f"Registered {app_name}")


@app.command("policy")
def set_policy(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    name: Annotated[str, typer.Argument(
        metavar="POLICY", help="DefaultOutputSelectionPolicy, exp3, exp4 or ab.")],
    threshold: ThresholdOption = None,
    weights_json: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Switch an application to another selection policy (learned weights are kept per policy)."""
    with _command(ctx, as_json) as out:
        weights = _policy_weights(weights_json)
        conn = connect(_options(ctx))
        conn.set_selection_policy(app_name, name, confidence_threshold=threshold, policy_weights=weights)
        _app_result(out, conn, app_name, f"{app_name} now uses")


@app.command()
def feedback(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    input_json: Annotated[str, typer.Option("--input", help="The input as JSON (as predicted).")],
    label_json: Annotated[str, typer.Option("--label", help="The right answer (a JSON number).")],
    uid: Annotated[int, typer.Option(help="The user whose weights learn (0: the application's).")] = 0,
    timeout_s: Annotated[float, typer.Option(help="HTTP timeout in seconds.")] = _PREDICT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Teach an application's selection policy: POST /APP/update {uid, input, label}."""
    with _command(ctx, as_json) as out:
        value, label = _json_option("input", input_json), _json_option("label", label_json)
        if isinstance(label, int) and not isinstance(label, bool):
            label = float(label)  # the original's schema wants a double: `--label 3` means 3.0
        conn = connect(_options(ctx))
        url = f"http://{conn.get_query_addr()}/{app_name}/update"
        reply = requests.post(url, json={"uid": uid, "input": value, "label": label}, timeout=timeout_s)
        if reply.status_code != requests.codes.ok:
            raise CliError(f"{server_message(reply.text)} (HTTP {reply.status_code})")
        text = reply.text.strip()
        out.result({"app": app_name, "uid": uid, "accepted": text.endswith("? 1"), "reply": text}, text)


def _json_option(option: str, text: str | None) -> Any:
    try:
        return json.loads(str(text))
    except ValueError as exc:
        raise CliError(f"--{option} is not JSON: {exc}") from exc


# -- models -------------------------------------------------------------------------------------


@app.command()
def deploy(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="PATH.py:FUNC", help="The predict function.")],
    name: Annotated[str, typer.Option(help="Model name.")],
    input_type: Annotated[str, typer.Option(help="integers, floats, doubles, bytes or strings.")],
    version: Annotated[str, typer.Option(help="Model version.")] = "1",
    pkgs: Annotated[list[str] | None, typer.Option(
        help="pip requirements for the model (repeat the option, or space-separated).")] = None,
    app_name: Annotated[str | None, typer.Option(
        "--app", help="Link the model to this app (registered first if missing).")] = None,
    replicas: Annotated[int, typer.Option(min=0, help="Replicas to start.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Fixed batch size; -1 adaptive.")] = -1,
    slo_micros: Annotated[int, typer.Option(help="SLO of an app registered by --app.")] = 3_000_000,
    default_output: Annotated[str, typer.Option(help="Default output of an app registered by --app.")] =
        "None",
    as_json: JsonOption = False,
) -> None:
    """Deploy a Python function from a file as a model (deploy_python_closure)."""
    from clipper_admin.deployers.python import deploy_python_closure

    with _command(ctx, as_json, long_running=True) as out:
        func = load_function(target)
        requirements = [p for spec in pkgs or [] for p in spec.split()]
        conn = connect(_options(ctx))
        if app_name is not None and app_name not in conn.get_all_apps():
            conn.register_application(app_name, input_type, default_output, slo_micros)
        deploy_python_closure(conn, name=name, version=version, input_type=input_type, func=func,
                              num_replicas=replicas, batch_size=batch_size,
                              pkgs_to_install=requirements or None)
        if app_name is not None and name not in conn.get_linked_models(app_name):
            conn.link_model_to_app(app_name, name)
        result = {"model": name, "version": version, "replicas": replicas, "app": app_name,
                  "predict_url": f"http://{conn.get_query_addr()}/{app_name}/predict" if app_name else None}
        message = f"Deployed {name}:{version} ({replicas} replica{'s' if replicas != 1 else ''})"
        if app_name is not None:
            message += f", linked to {app_name}: POST {result['predict_url']}"
        out.result(result, message)


@app.command()
def predict(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP")],
    input_json: Annotated[str | None, typer.Option("--input", help="One input as JSON.")] = None,
    batch_json: Annotated[str | None, typer.Option("--batch", help="A JSON list of inputs.")] = None,
    timeout_s: Annotated[float, typer.Option(help="HTTP timeout in seconds.")] = _PREDICT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Query an application: POST /APP/predict with --input or --batch."""
    with _command(ctx, as_json) as out:
        if (input_json is None) == (batch_json is None):
            raise CliError("give exactly one of --input JSON and --batch JSON")
        key, text = ("input", input_json) if input_json is not None else ("input_batch", batch_json)
        value = _json_option("input" if key == "input" else "batch", text)
        conn = connect(_options(ctx))
        url = f"http://{conn.get_query_addr()}/{app_name}/predict"
        reply = requests.post(url, json={key: value}, timeout=timeout_s)
        if reply.status_code != requests.codes.ok:
            raise CliError(f"{server_message(reply.text)} (HTTP {reply.status_code})")
        try:
            answer = reply.json()
        except ValueError as exc:
            raise CliError(f"{url} did not answer JSON: {reply.text[:200]!r}") from exc
        if out.as_json:
            out.json(answer)
            return
        rows = answer.get("batch_predictions", [answer])
        columns = ["query id", "output", "default", "explanation"]
        cells = [[r.get("query_id"), r.get("output"), r.get("default"), r.get("default_explanation")]
                 for r in rows]
        if any("confidence" in r for r in rows):  # an ensemble's answers (exp4)
            columns += ["confidence", "members answered"]
            for cell, r in zip(cells, rows, strict=True):
                cell += [r.get("confidence"), f"{r.get('members_answered')} of {r.get('members')}"]
        out.table(None, columns, cells)


@app.command()
def link(ctx: typer.Context, app_name: Annotated[str, typer.Argument(metavar="APP")],
         model: Annotated[str, typer.Argument(metavar="MODEL")], as_json: JsonOption = False) -> None:
    """Route an application's queries to a model."""
    _set_link(ctx, app_name, model, as_json, linked=True)


@app.command()
def unlink(ctx: typer.Context, app_name: Annotated[str, typer.Argument(metavar="APP")],
           model: Annotated[str, typer.Argument(metavar="MODEL")], as_json: JsonOption = False) -> None:
    """Remove the link between an application and a model."""
    _set_link(ctx, app_name, model, as_json, linked=False)


def _set_link(ctx: typer.Context, app_name: str, model: str, as_json: bool, *, linked: bool) -> None:
    with _command(ctx, as_json) as out:
        conn = connect(_options(ctx))
        if linked:
            conn.link_model_to_app(app_name, model)
            text = f"Linked {model} to {app_name}"
        else:
            conn.unlink_model_from_app(app_name, model)
            text = f"Unlinked {model} from {app_name}"
        out.result({"app": app_name, "model": model, "linked": linked}, text)


@app.command()
def scale(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL")],
    replicas: Annotated[int, typer.Argument(metavar="N", min=0)],
    version: Annotated[str | None, typer.Option(help="Version to scale (default: current).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set the number of replicas of a model version."""
    with _command(ctx, as_json, long_running=True) as out:
        conn = connect(_options(ctx))
        version = version or conn.get_current_model_version(model)
        conn.set_num_replicas(model, replicas, version)
        running = conn.get_num_replicas(model, version)
        out.result({"model": model, "version": version, "replicas": running},
                   f"{model}:{version} has {running} replica{'s' if running != 1 else ''}")


@app.command("version")
def set_version(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL")],
    version: Annotated[str, typer.Argument(metavar="V")],
    replicas: Annotated[int | None, typer.Option(min=0, help="Also scale that version.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Make version V of a model current (roll back or forward)."""
    with _command(ctx, as_json, long_running=True) as out:
        conn = connect(_options(ctx))
        previous = conn.get_current_model_version(model)
        conn.set_model_version(model, version, replicas)
        out.result({"model": model, "version": version, "previous_version": previous},
                   f"{model}: current version {version} (was {previous})")


@app.command()
def logs(
    ctx: typer.Context,
    process: Annotated[str | None, typer.Argument(help="Only processes whose name contains this.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines of each log.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Print the last lines of each process's log (containers' with Docker, pods' with Kubernetes)."""
    with _command(ctx, as_json) as out:
        conn = connect(_options(ctx))
        if follow:
            if out.as_json:
                raise CliError("--follow prints lines as they come; it has no --json form")

            def emit(name: str, line: str) -> None:
                sys.stdout.write(f"[{name}] {line}\n")
                sys.stdout.flush()

            cluster_logs.follow(conn, _options(ctx).manager, lines, emit, process)
            return
        found = cluster_logs.tails(conn, lines, process)
        if out.as_json:
            out.json(found)
            return
        for name, text in found.items():
            sys.stdout.write(f"==> {name} <==\n" + "".join(f"{line}\n" for line in text))
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit status (see EXIT_CODES_HELP)."""
    try:
        app(args=argv, prog_name="clipper", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
