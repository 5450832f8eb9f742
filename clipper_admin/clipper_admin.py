"""``ClipperConnection``: drive a Clipper cluster through its management REST API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import requests

from clipper_admin._logging import LOG_DATE_FORMAT, LOG_FORMAT
from clipper_admin._metrics_merge import merge_reports
from clipper_admin._validation import (
    check_predict_function,
    validate_pkgs_to_install,
    validate_versioned_model_name,
)
from clipper_admin.container_manager import (
    CLIPPER_INTERNAL_MANAGEMENT_PORT,
    CLIPPER_INTERNAL_METRIC_PORT,
    CLIPPER_INTERNAL_QUERY_PORT,
    CLIPPER_INTERNAL_RPC_PORT,
    CONTAINERLESS_MODEL_IMAGE,
    ClusterAdapter,
    ContainerManager,
)
from clipper_admin.decorators import retry
from clipper_admin.exceptions import ClipperException, UnconnectedException
from clipper_admin.version import __registry__, __version__

__all__ = [
    "CLIPPER_INTERNAL_MANAGEMENT_PORT",
    "CLIPPER_INTERNAL_METRIC_PORT",
    "CLIPPER_INTERNAL_QUERY_PORT",
    "CLIPPER_INTERNAL_RPC_PORT",
    "CLIPPER_TEMP_DIR",
    "CONTAINERLESS_MODEL_IMAGE",
    "DEFAULT_HTTP_TIMEOUT_S",
    "DEFAULT_LABEL",
    "DEFAULT_PREDICTION_CACHE_SIZE_BYTES",
    "LOG_DATE_FORMAT",
    "LOG_FORMAT",
    "ClipperConnection",
]

DEFAULT_LABEL: Final[list[str]] = []
DEFAULT_PREDICTION_CACHE_SIZE_BYTES: Final = 33554432
CLIPPER_TEMP_DIR: Final = "/tmp/clipper"  # used by tests only, as in the original
# The original set no timeout, so a wedged frontend hung the caller forever.
DEFAULT_HTTP_TIMEOUT_S: Final = 30.0
_HEALTH_CHECK_TIMEOUT_S: Final = 5.0
_JSON_HEADERS: Final = {"Content-type": "application/json"}


logger = logging.getLogger(__name__)


class ClipperConnection:
    """A handle on one Clipper cluster, run by ``container_manager``.

    Call ``start_clipper()`` to create the cluster or ``connect()`` to attach to a running one;
    every other call except ``build_model``, ``stop_all`` and ``test_predict_function`` raises
    ``UnconnectedException`` before that. Management errors raise ``ClipperException`` carrying
    the server's message.
    """

    def __init__(self, container_manager: ContainerManager) -> None:
        self.connected = False
        self.cm = container_manager
        self.http_timeout_s = DEFAULT_HTTP_TIMEOUT_S
        self.logger = ClusterAdapter(logger, {"cluster_name": self.cm.cluster_identifier})
        self._session = requests.Session()

    # -- plumbing -----------------------------------------------------------------------------

    def _require_connection(self) -> None:
        if not self.connected:
            raise UnconnectedException()

    def _post_admin(self, endpoint: str, body: Mapping[str, Any]) -> requests.Response:
        """POST a JSON body to ``/admin/<endpoint>``; non-200 or no answer -> ClipperException."""
        url = f"http://{self.cm.get_admin_addr()}/admin/{endpoint}"
        try:
            response = self._session.post(
                url, data=json.dumps(body), headers=self._admin_headers(), timeout=self.http_timeout_s
            )
        except requests.RequestException as exc:
            msg = f"Could not reach the Clipper management frontend at {url}: {exc}"
            self.logger.error(msg)
            raise ClipperException(msg) from exc
        if response.status_code != requests.codes.ok:
            msg = f"Received error status code: {response.status_code} and message: {response.text}"
            self.logger.error(msg)
            raise ClipperException(msg)
        return response

    def _admin_headers(self) -> dict[str, str]:
        """JSON, plus the bearer token when the cluster's management API requires one."""
        token = getattr(self.cm, "admin_token", None)
        return {**_JSON_HEADERS, "Authorization": f"Bearer {token}"} if token else dict(_JSON_HEADERS)

    def _post_admin_json(self, endpoint: str, body: Mapping[str, Any]) -> Any:
        response = self._post_admin(endpoint, body)
        try:
            return response.json()
        except ValueError as exc:
            raise ClipperException(
                f"The management frontend answered /admin/{endpoint} with invalid JSON: "
                f"{response.text[:200]!r}"
            ) from exc

    def _check_health(self) -> None:
        """Raise RequestException unless both frontends answer 200."""
        for url in (
            f"http://{self.cm.get_query_addr()}/metrics",
            f"http://{self.cm.get_admin_addr()}/admin/ping",
        ):
            response = self._session.get(url, timeout=_HEALTH_CHECK_TIMEOUT_S)
            if response.status_code != requests.codes.ok:
                raise requests.RequestException(
                    f"Clipper still initializing: {url} answered {response.status_code}"
                )

    # -- cluster lifecycle --------------------------------------------------------------------

    def start_clipper(
        self,
        query_frontend_image: str = f"{__registry__}/query_frontend:{__version__}",
        mgmt_frontend_image: str = f"{__registry__}/management_frontend:{__version__}",
        frontend_exporter_image: str = f"{__registry__}/frontend-exporter:{__version__}",
        cache_size: int = DEFAULT_PREDICTION_CACHE_SIZE_BYTES,
        qf_http_thread_pool_size: int = 1,
        qf_http_timeout_request: int = 5,
        qf_http_timeout_content: int = 300,
        num_frontend_replicas: int = 1,
    ) -> None:
        """Start a new cluster (Redis, both frontends) and connect to it.

        Raises:
            ClipperException: the container manager could not start the cluster.
        """
        try:
            self.cm.start_clipper(
                query_frontend_image,
                mgmt_frontend_image,
                frontend_exporter_image,
                cache_size,
                qf_http_thread_pool_size,
                qf_http_timeout_request,
                qf_http_timeout_content,
                num_frontend_replicas,
            )
        except ClipperException as exc:
            self.logger.warning("Error starting Clipper: %s", exc.msg)
            raise
        retry(requests.RequestException, tries=300, delay=1, backoff=1, logger=self.logger)(
            self._check_health
        )()
        self.logger.info("Clipper is running")
        self.connected = True

    def connect(self) -> None:
        """Attach to the running cluster the container manager describes."""
        self.cm.connect()
        self.connected = True
        self.logger.info("Successfully connected to Clipper cluster at %s", self.cm.get_query_addr())

    def stop_all(self, graceful: bool = True) -> None:
        """Stop the whole cluster: frontends, Redis and every model replica (no connection needed)."""
        self.cm.stop_all(graceful=graceful)
        self.logger.info("Stopped all Clipper cluster and all model containers")

    # -- applications -------------------------------------------------------------------------

    def register_application(
        self,
        name: str,
        input_type: str,
        default_output: str,
        slo_micros: int,
        selection_policy: str | None = None,
        confidence_threshold: float | None = None,
        policy_weights: Mapping[str, float] | None = None,
    ) -> None:
        """Register an application (a REST endpoint ``/<name>/predict``).

        Args:
            selection_policy: ours, optional. ``"DefaultOutputSelectionPolicy"`` (the original's,
                the default: one linked model), ``"exp3"`` (one model per query, learned from
                ``/<name>/update`` feedback), ``"exp4"`` (a weighted ensemble of every linked
                model, answered with a confidence) or ``"ab"`` (a fixed split between models).
            confidence_threshold: exp4 only: below this weighted agreement (0..1, default 0.5)
                the application answers with its default output.
            policy_weights: ab only: model name -> share of the traffic.

        Raises:
            ClipperException: the management frontend refused (e.g. an unknown policy).
        """
        self._require_connection()
        body: dict[str, Any] = {
            "name": name,
            "input_type": input_type,
            "default_output": default_output,
            "latency_slo_micros": slo_micros,
        }
        body.update(_selection_fields(selection_policy, confidence_threshold, policy_weights))
        self._post_admin("add_app", body)
        self.logger.info("Application %s was successfully registered", name)

    def set_selection_policy(
        self,
        app_name: str,
        selection_policy: str,
        confidence_threshold: float | None = None,
        policy_weights: Mapping[str, float] | None = None,
    ) -> None:
        """Switch a registered application to another selection policy (ours; see
        ``register_application``). Learned weights are kept per application and policy.

        Raises:
            ClipperException: unknown application or policy, a setting the policy does not take,
                or the default policy for an application linked to several models.
        """
        self._require_connection()
        if not isinstance(selection_policy, str):
            raise ClipperException("selection_policy must be a string")
        body: dict[str, Any] = {"app_name": app_name}
        body.update(_selection_fields(selection_policy, confidence_threshold, policy_weights))
        self._post_admin("set_selection_policy", body)
        self.logger.info("Application %s now uses selection policy %s", app_name, selection_policy)

    def unregister_application(self, name: str) -> None:
        """Remove an application and its endpoint."""
        self._require_connection()
        self._post_admin("delete_app", {"name": name})
        self.logger.info("Application %s was successfully unregistered", name)

    def delete_application(self, name: str) -> None:
        """Deprecated alias of ``unregister_application``."""
        self._require_connection()
        self.logger.warning("[DEPRECATED] Use 'unregister_application' API instead of this.")
        self.unregister_application(name)

    def link_model_to_app(self, app_name: str, model_name: str) -> None:
        """Route the application's queries to the model's current version."""
        self._require_connection()
        self._post_admin("add_model_links", {"app_name": app_name, "model_names": [model_name]})
        self.logger.info("Model %s is now linked to application %s", model_name, app_name)

    def unlink_model_from_app(self, app_name: str, model_name: str) -> None:
        """Remove the link between an application and a model."""
        self._require_connection()
        self._post_admin("delete_model_links", {"app_name": app_name, "model_names": [model_name]})
        logger.info("Model %s is now removed to application %s", model_name, app_name)

    def get_all_apps(self, verbose: bool = False) -> list[Any]:
        """App names, or (verbose) dicts with input_type, default_output, latency_slo_micros,
        name and linked_models."""
        self._require_connection()
        return self._post_admin_json("get_all_applications", {"verbose": verbose})  # type: ignore[no-any-return]

    def get_app_info(self, name: str) -> dict[str, Any] | None:
        """The app's dict (as a verbose ``get_all_apps`` entry), or None if it does not exist.

        For an application on a selection policy other than the original's (ours), the dict also
        has ``selection_policy``, ``selection_weights`` (model name -> share of the weight, from
        the learned state for exp3/exp4), ``feedback_rounds`` and, for exp4,
        ``confidence_threshold``.
        """
        self._require_connection()
        info = self._post_admin_json("get_application", {"name": name})
        if not info:
            self.logger.warning("Application %s is not registered with Clipper", name)
            return None
        return info  # type: ignore[no-any-return]

    def get_linked_models(self, app_name: str) -> list[str]:
        """Names of the models linked to the app (``[]`` if none)."""
        self._require_connection()
        return self._post_admin_json("get_linked_models", {"app_name": app_name})  # type: ignore[no-any-return]

    # -- models -------------------------------------------------------------------------------

    def build_and_deploy_model(
        self,
        name: str,
        version: Any,
        input_type: str,
        model_data_path: str,
        base_image: str,
        labels: list[str] | None = None,
        container_registry: str | None = None,
        num_replicas: int = 1,
        batch_size: int = -1,
        pkgs_to_install: list[str] | None = None,
    ) -> None:
        """``build_model`` then ``deploy_model`` with the image it returns."""
        self._require_connection()
        image = self.build_model(
            name, version, model_data_path, base_image, container_registry, pkgs_to_install
        )
        self.deploy_model(name, version, input_type, image, labels, num_replicas, batch_size)

    def build_model(
        self,
        name: str,
        version: Any,
        model_data_path: str,
        base_image: str,
        container_registry: str | None = None,
        pkgs_to_install: list[str] | None = None,
    ) -> str:
        """Package ``model_data_path`` on ``base_image``; return the image name to deploy.

        The container manager does the work (``ContainerManager.build_model``): an image build
        with Docker, a model directory (plus a virtual environment for ``pkgs_to_install``) for the
        local manager.

        Raises:
            ClipperException: invalid name/version, or the manager cannot build.
        """
        version = str(version)
        validate_versioned_model_name(name, version)
        pkgs_to_install = validate_pkgs_to_install(pkgs_to_install) or None
        try:
            return self.cm.build_model(
                name, version, model_data_path, base_image, container_registry, pkgs_to_install
            )
        except NotImplementedError as exc:
            raise ClipperException(f"Cannot build model {name}:{version}: {exc}") from exc

    def deploy_model(
        self,
        name: str,
        version: Any,
        input_type: str,
        image: str,
        labels: list[str] | None = None,
        num_replicas: int = 1,
        batch_size: int = -1,
    ) -> None:
        """Start ``num_replicas`` replicas of ``image``, then register the model version."""
        self._require_connection()
        version = str(version)
        validate_versioned_model_name(name, version)
        self.cm.deploy_model(
            name=name, version=version, input_type=input_type, image=image, num_replicas=num_replicas
        )
        self.register_model(
            name, version, input_type, image=image, labels=labels, batch_size=batch_size
        )
        self.logger.info("Done deploying model %s:%s.", name, version)

    def register_model(
        self,
        name: str,
        version: Any,
        input_type: str,
        image: str | None = None,
        labels: list[str] | None = None,
        batch_size: int = -1,
    ) -> None:
        """Register a model version (it becomes current); starts no replica."""
        self._require_connection()
        version = str(version)
        validate_versioned_model_name(name, version)
        body = {
            "model_name": name,
            "model_version": version,
            "labels": labels if labels is not None else list(DEFAULT_LABEL),
            "input_type": input_type,
            "container_name": image if image is not None else CONTAINERLESS_MODEL_IMAGE,
            "model_data_path": "DEPRECATED",
            "batch_size": batch_size,
        }
        self.logger.debug(json.dumps(body))
        self._post_admin("add_model", body)
        self.logger.info("Successfully registered model %s:%s", name, version)

    def get_current_model_version(self, name: str) -> str:
        """The current version of model ``name``; ClipperException if it has none."""
        self._require_connection()
        for model in self.get_all_models(verbose=True):
            if model["model_name"] == name and model["is_current_version"]:
                return str(model["model_version"])
        raise ClipperException(f"No versions of model {name} registered with Clipper")

    def get_num_replicas(self, name: str, version: Any = None) -> int:
        """Running replicas of a model version (the current one when ``version`` is None)."""
        self._require_connection()
        version = self.get_current_model_version(name) if version is None else str(version)
        return self.cm.get_num_replicas(name, version)

    def set_num_replicas(self, name: str, num_replicas: int, version: Any = None) -> None:
        """Grow or shrink a model version's replicas (the current version when None)."""
        self._require_connection()
        version = self.get_current_model_version(name) if version is None else str(version)
        validate_versioned_model_name(name, version)
        info = self.get_model_info(name, version)
        if info is None:
            raise ClipperException(f"Cannot add container for non-registered model {name}:{version}")
        if info["container_name"] == CONTAINERLESS_MODEL_IMAGE:
            raise ClipperException(
                f"Cannot resize the replica set for containerless model {name}:{version}"
            )
        self.cm.set_num_replicas(
            name, version, info["input_type"], info["container_name"], num_replicas
        )

    def get_all_models(self, verbose: bool = False) -> list[Any]:
        """``"<name>:<version>"`` strings, or (verbose) dicts with model_name, model_version,
        input_type, labels, container_name, model_data_path and is_current_version."""
        self._require_connection()
        return self._post_admin_json("get_all_models", {"verbose": verbose})  # type: ignore[no-any-return]

    def get_model_info(self, name: str, version: Any) -> dict[str, Any] | None:
        """A verbose ``get_all_models`` entry, or None if that version is not registered."""
        self._require_connection()
        version = str(version)
        info = self._post_admin_json("get_model", {"model_name": name, "model_version": version})
        if not info:
            self.logger.warning("Model %s:%s is not registered with Clipper.", name, version)
            return None
        return info  # type: ignore[no-any-return]

    def get_all_model_replicas(self, verbose: bool = False) -> list[Any]:
        """``"<name>:<version>:<replica_id>"`` strings, or (verbose) dicts with model_id,
        model_name, model_version, model_replica_id and input_type.

        Verbose, with a manager that restarts replicas itself (``LocalContainerManager``), the
        list ends with one dict per replica process that is not serving now: its
        ``model_replica_id`` is None and ``state`` says ``restarting`` or ``crash-loop``, with
        ``restarts``, ``last_exit`` and ``replica_name``. The connected replicas come first, as
        the management frontend lists them.
        """
        self._require_connection()
        replicas = self._post_admin_json("get_all_containers", {"verbose": verbose})
        if verbose:
            for process in self.cm.replica_supervision():
                if process["state"] != "running":
                    name, version = process["model_name"], process["model_version"]
                    replicas.append({
                        "model_id": f"{name}:{version}", "model_name": name, "model_version": version,
                        "model_replica_id": None,
                        **{k: process[k] for k in ("state", "restarts", "last_exit", "replica_name")},
                    })  # fmt: skip
        return replicas  # type: ignore[no-any-return]

    def get_model_replica_info(
        self, name: str, version: Any, replica_id: int
    ) -> dict[str, Any] | None:
        """One connected replica's dict, or None if there is no such replica."""
        self._require_connection()
        version = str(version)
        info = self._post_admin_json(
            "get_container",
            {"model_name": name, "model_version": version, "replica_id": replica_id},
        )
        if not info:
            self.logger.warning(
                "No model replica with ID %s found for model %s:%s", replica_id, name, version
            )
            return None
        return info  # type: ignore[no-any-return]

    def set_model_version(self, name: str, version: Any, num_replicas: int | None = None) -> None:
        """Make ``version`` current; optionally resize its replicas."""
        self._require_connection()
        version = str(version)
        self._post_admin("set_model_version", {"model_name": name, "model_version": version})
        if num_replicas is not None:
            self.set_num_replicas(name, num_replicas, version)

    # -- observability ------------------------------------------------------------------------

    def get_clipper_logs(self, logging_dir: str = "clipper_logs/") -> list[str]:
        """Copy every cluster process's / container's log into ``logging_dir``; return the paths."""
        self._require_connection()
        return self.cm.get_logs(logging_dir)

    def inspect_instance(self) -> dict[str, Any]:
        """The query frontend's metrics report (``GET /metrics``) as a dict.

        With several query frontends (``start_clipper(num_frontend_replicas=N)``), the reports
        of all of them, each read at its own address, merged into one: counters and rates
        summed, histograms pooled (percentiles: the largest frontend's), ratios weighted by
        their counts (``clipper_admin._metrics_merge``). A frontend that does not answer is
        left out with a warning; none answering raises.
        """
        self._require_connection()
        addrs = self.cm.get_query_frontend_addrs()
        if len(addrs) <= 1:
            return self._metrics_report(self.cm.get_query_addr())
        reports = []
        for addr in addrs:
            try:
                reports.append(self._metrics_report(addr))
            except ClipperException as exc:
                self.logger.warning("Metrics of query frontend %s left out: %s", addr, exc.msg)
        if not reports:
            raise ClipperException(f"No query frontend answered /metrics (tried {', '.join(addrs)})")
        return merge_reports(reports)

    def _metrics_report(self, addr: str) -> dict[str, Any]:
        url = f"http://{addr}/metrics"
        try:
            response = self._session.get(
                url, headers={"Accept": "application/json"}, timeout=self.http_timeout_s
            )
        except requests.RequestException as exc:
            raise ClipperException(f"Could not reach the query frontend at {url}: {exc}") from exc
        if response.status_code != requests.codes.ok:
            msg = f"Received error status code: {response.status_code} and message: {response.text}"
            self.logger.error(msg)
            raise ClipperException(msg)
        if not response.text.strip():
            return {}  # the original answers an empty body while no metric exists yet
        try:
            return response.json()  # type: ignore[no-any-return]
        except ValueError as exc:
            raise ClipperException(f"{url} did not answer JSON: {response.text[:200]!r}") from exc

    def get_query_addr(self) -> str:
        """``host:port`` of the query frontend's REST API."""
        self._require_connection()
        return self.cm.get_query_addr()

    def get_metric_addr(self) -> str:
        """``host:port`` where metrics are scraped."""
        self._require_connection()
        return self.cm.get_metric_addr()

    # -- stopping models ----------------------------------------------------------------------

    def _unregister_versioned_models(self, model_versions_dict: Mapping[str, list[str]]) -> None:
        for model_name, versions in model_versions_dict.items():
            for version in versions:
                self._post_admin(
                    "delete_versioned_model", {"model_name": model_name, "model_version": version}
                )
                logger.info("Model %s:%s was successfully deleted", model_name, version)

    def _registered_versions(
        self, names: list[str] | None, inactive_only: bool = False
    ) -> dict[str, list[str]]:
        """``{name: [versions]}`` of registered models (all names when ``names`` is None)."""
        versions: dict[str, list[str]] = {}
        for model in self._post_admin_json("get_all_models", {"verbose": True}):
            if names is not None and model["model_name"] not in names:
                continue
            if inactive_only and model["is_current_version"]:
                continue
            versions.setdefault(model["model_name"], []).append(str(model["model_version"]))
        return versions

    def stop_models(self, model_names: list[str]) -> None:
        """Stop the replicas of every version of the named models and unregister them."""
        self._require_connection()
        model_dict = self._registered_versions(model_names)
        self.cm.stop_models(model_dict)
        self._unregister_versioned_models(model_dict)
        self.logger.info(
            "Stopped all containers for these models and versions:\n%s",
            json.dumps(model_dict, indent=4),
        )

    def stop_versioned_models(self, model_versions_dict: dict[str, list[str]]) -> None:
        """Stop and unregister exactly the given ``{name: [versions]}`` (current ones included)."""
        self._require_connection()
        model_versions_dict = {
            name: [str(v) for v in versions] for name, versions in model_versions_dict.items()
        }
        self.cm.stop_models(model_versions_dict)
        self._unregister_versioned_models(model_versions_dict)
        self.logger.info(
            "Stopped all containers for these models and versions:\n%s",
            json.dumps(model_versions_dict, indent=4),
        )

    def stop_inactive_model_versions(self, model_names: list[str]) -> None:
        """Stop and unregister every non-current version of the named models."""
        self._require_connection()
        model_dict = self._registered_versions(model_names, inactive_only=True)
        self.cm.stop_models(model_dict)
        self._unregister_versioned_models(model_dict)
        self.logger.info(
            "Stopped all containers for these models and versions:\n%s",
            json.dumps(model_dict, indent=4),
        )

    def stop_all_model_containers(self) -> None:
        """Stop every model replica and unregister every model version.

        Needs no ``connect()`` and works while the management frontend or Redis is down, as the
        original documented: stopping containers is the container manager's job. Unregistering
        the versions is done when the management API answers, and skipped with a warning when
        it does not.
        """
        model_dict: dict[str, list[str]] | None = None
        try:
            if not self.connected:
                self.cm.connect()  # the cluster's real addresses, for the unregistering part
            model_dict = self._registered_versions(None)
        except ClipperException as exc:
            self.logger.warning(
                "Cannot list registered models (%s); stopping the model containers only", exc.msg
            )
        self.cm.stop_all_model_containers()
        if model_dict is None:
            self.logger.info("Stopped all Clipper model containers")
            return
        try:
            self._unregister_versioned_models(model_dict)
        except ClipperException as exc:
            self.logger.warning("Stopped the model containers but could not unregister them: %s", exc.msg)
            return
        self.logger.info("Stopped all Clipper model containers:\n%s", json.dumps(model_dict, indent=4))

    # -- local checks -------------------------------------------------------------------------

    def test_predict_function(
        self,
        query: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        func: Callable[..., Any],
        input_type: str,
    ) -> list[str]:
        """Run ``func`` locally on a REST-style query, as a model container would.

        ``query`` is a dict like the REST body, ``{"input": x}`` or ``{"input_batch": [x, ...]}``,
        or a list of such dicts (their inputs go to ``func`` as one batch, in order).
        The function is round-tripped through cloudpickle, called on the inputs converted as the
        container runtime converts them (one 2-D numpy array for equal-length numeric inputs,
        else a list of arrays; ``str`` for strings; ``bytes`` for bytes), and must return one
        ``str`` per input. Needs no cluster.

        Returns:
            The function's outputs.

        Raises:
            ClipperException: says what is wrong (bad query or input type, unpicklable function,
            an exception in the function, or outputs that are not a list of str of the right
            length).
        """
        return check_predict_function(query, func, input_type)


def _selection_fields(
    policy: str | None, confidence_threshold: float | None, policy_weights: Mapping[str, float] | None
) -> dict[str, Any]:
    """The request's selection keys; none at all when no policy is named (the original's body)."""
    if policy is None:
        if confidence_threshold is not None or policy_weights is not None:
            raise ClipperException("confidence_threshold and policy_weights need a selection_policy")
        return {}
    fields: dict[str, Any] = {"selection_policy": policy}
    if confidence_threshold is not None:
        fields["confidence_threshold"] = confidence_threshold
    if policy_weights is not None:
        fields["policy_weights"] = dict(policy_weights)
    return fields
