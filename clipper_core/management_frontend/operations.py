"""What each ``/admin/*`` endpoint does to the Redis state, with the original's texts.

Requests arrive validated (``validation``); this layer runs the checks that need Redis, in the
original's order, then writes through :class:`~clipper_core.state.StateStore`. A refusal raises
:class:`~clipper_core.errors.Rejected` (HTTP 400, plain text). A Redis
failure while writing becomes the original's "Error ... Redis" text; one while reading propagates
as :class:`~clipper_core.errors.StateError` (HTTP 500 JSON from the shared middleware).

Mutations run one at a time (a lock) so "check, then write" cannot interleave with another
request of this process, as in the original's single request thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from clipper_core.errors import Rejected, StateError
from clipper_core.management_frontend.render import (
    JsonValue,
    app_json,
    container_json,
    model_json,
)
from clipper_core.management_frontend.validation import (
    AddApp,
    AddModel,
    ContainerRef,
    ModelLinks,
    ModelRef,
    SelectionChoice,
    SelectionStateRequest,
    SetBatchSize,
    SetSelectionPolicy,
)
from clipper_core.state import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_SELECTION_POLICY,
    AppInfo,
    InputType,
    ModelId,
    ModelInfo,
    SelectionPolicyName,
    StateStore,
)

__all__ = ["ManagementService"]

logger = logging.getLogger(__name__)

DEFAULT_USER_ID = 0


class ManagementService:
    """The management API over one :class:`StateStore`."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._write_lock = asyncio.Lock()

    # ------------------------------------------------------------------ applications

    async def add_app(self, request: AddApp) -> str:
        name = request.name
        async with self._write_lock:
            if await self._store.app_exists(name):
                raise Rejected(f"application '{name}' already exists")
            app = _with_selection(
                AppInfo(name, request.input_type, request.default_output, request.latency_slo_micros),
                request.selection,
            )
            await self._write(self._store.add_app(app), f"Error adding application '{name}' to Redis")
        return f"Successfully added application with name '{name}'"

    async def delete_app(self, name: str) -> str:
        """Our fix: the app's links (DB 7) and selection state (DB 1) go too, the record last.

        Deleting the record last means a crash half-way leaves an app that can be deleted
        again, never stale links that a re-created app of the same name would inherit.
        """
        async with self._write_lock:
            if not await self._store.app_exists(name):
                raise Rejected(f"Application '{name}' does not exist")
            failure = f"Error deleting application '{name}' to Redis"  # sic, as the original
            await self._write(self._store.delete_links(name), failure)
            await self._write(self._store.delete_selection_state(name), failure)
            await self._write(self._store.delete_policy_states(name), failure)  # ours: the weights
            await self._write(self._store.delete_app(name), failure)
        return f"Successfully deleted application with name '{name}'"

    async def get_all_applications(self, verbose: bool) -> list[JsonValue]:
        names = sorted(await self._store.list_app_names())
        if not verbose:
            return list[JsonValue](names)
        entries: list[JsonValue] = []
        for name in names:
            app = await self._store.get_app(name)
            if app is not None:  # deleted while we listed
                entries.append(await self._app_entry(app))
        return entries

    async def get_application(self, name: str) -> dict[str, JsonValue]:
        app = await self._store.get_app(name)
        if app is None:
            return {}
        return await self._app_entry(app)

    async def _app_entry(self, app: AppInfo) -> dict[str, JsonValue]:
        links = await self._store.get_linked_models(app.name)
        if app.policy == DEFAULT_SELECTION_POLICY:
            return app_json(app, links)  # exactly the original's entry
        selection: dict[str, JsonValue] = {"selection_policy": app.policy}
        if app.policy == SelectionPolicyName.EXP4:
            threshold = app.confidence_threshold
            if threshold is None:
                threshold = DEFAULT_CONFIDENCE_THRESHOLD
            selection["confidence_threshold"] = threshold
        if app.policy == SelectionPolicyName.AB:
            split = dict(app.policy_weights)
            weights = {m: split.get(m, 0.0) for m in links} if split else dict.fromkeys(links, 1.0)
            rounds = 0
        else:
            state = await self._store.get_policy_state(app.name, 0, app.policy)
            learned = state.weights if state is not None else {}
            weights = {model: learned.get(model, 1.0) for model in links}
            rounds = state.rounds if state is not None else 0
        total = sum(weights.values())
        selection["selection_weights"] = {
            model: (weight / total if total > 0 else 0.0) for model, weight in weights.items()
        }
        selection["feedback_rounds"] = rounds
        return app_json(app, links, selection)

    async def set_selection_policy(self, request: SetSelectionPolicy) -> str:
        """Ours: switch an application's policy (the query frontend follows the ``hset``)."""
        app_name, choice = request.app_name, request.selection
        async with self._write_lock:
            app = await self._store.get_app(app_name)
            if app is None:
                raise Rejected(f"No app with name '{app_name}' exists.")
            links = await self._store.get_linked_models(app_name)
            if choice.policy == DEFAULT_SELECTION_POLICY and len(links) > 1:
                raise Rejected(
                    f"Application '{app_name}' is linked to {len(links)} models and "
                    f"{DEFAULT_SELECTION_POLICY} uses one: unlink all but one model first"
                )
            await self._write(
                self._store.set_app_policy(_with_selection(app, choice)),
                f"Error setting the selection policy of application '{app_name}' in Redis",
            )
        return f"Successfully set the selection policy of application '{app_name}' to '{choice.policy}'"

    async def get_selection_state(self, request: SelectionStateRequest) -> str:
        if request.uid != DEFAULT_USER_ID:
            logger.warning(
                "Personalized default outputs are not supported; using uid %d instead of %d",
                DEFAULT_USER_ID,
                request.uid,
            )
        app = await self._store.get_app(request.app_name)
        return app.default_output if app is not None else ""

    # ------------------------------------------------------------------ links

    async def add_model_links(self, request: ModelLinks) -> str:
        app_name, names = request.app_name, request.model_names
        async with self._write_lock:
            app = await self._store.get_app(app_name)
            if app is None:
                raise Rejected(f"No app with name '{app_name}' exists.")
            app_type = app.input_type.readable_name
            for model_name in names:
                version = await self._store.get_current_version(model_name)
                if version is None:
                    raise Rejected(f"No model with name '{model_name}' exists.")
                model = await self._store.get_model(model_name, version)
                # A current version whose record is gone compares as "" (the original's reading).
                model_type = model.input_type.readable_name if model is not None else ""
                if model_type != app_type:
                    raise Rejected(
                        f"Model with name '{model_name}' has incompatible input_type '{model_type}'. "
                        f"Requested app to link to has input_type '{app_type}'."
                    )
            if not names:
                raise Rejected(
                    "Please provide the name of the model that you want to link to the "
                    f"application '{app_name}'"
                )
            if app.policy != DEFAULT_SELECTION_POLICY:
                return await self._add_links_of_policy_app(app_name, names)
            if len(names) != 1:
                raise Rejected(
                    "Applications must be linked with at most one model. "
                    f"Attempted to add links to {len(names)} models."
                )
            new_name = names[0]
            existing = await self._store.get_linked_models(app_name)
            if new_name in existing:
                raise Rejected(f"The model with name '{new_name}' is already linked to '{app_name}'")
            if existing:
                raise Rejected(f"A model with name {existing[0]} is already linked to '{app_name}'.")
            await self._write(
                self._store.add_links(app_name, names), f"Error linking models to '{app_name}' in Redis"
            )
        return f"Successfully linked model with name '{new_name}' to application '{app_name}'"

    async def _add_links_of_policy_app(self, app_name: str, names: tuple[str, ...]) -> str:
        """Ours: an application on a selection policy may link several models (lock held)."""
        existing = set(await self._store.get_linked_models(app_name))
        for model_name in names:
            if model_name in existing:
                raise Rejected(f"The model with name '{model_name}' is already linked to '{app_name}'")
        await self._write(
            self._store.add_links(app_name, names), f"Error linking models to '{app_name}' in Redis"
        )
        if len(names) == 1:
            return f"Successfully linked model with name '{names[0]}' to application '{app_name}'"
        listed = ", ".join(f"'{name}'" for name in names)
        return f"Successfully linked models with names {listed} to application '{app_name}'"

    async def delete_model_links(self, request: ModelLinks) -> str:
        app_name = request.app_name
        async with self._write_lock:
            if not await self._store.app_exists(app_name):
                raise Rejected(f"No app with name {app_name} exists.")
            existing = set(await self._store.get_linked_models(app_name))
            for model_name in request.model_names:
                if model_name not in existing:
                    raise Rejected(
                        f"Cannot remove nonexistent link between app {app_name} and model {model_name}"
                    )
            await self._write(
                self._store.remove_links(app_name, request.model_names),
                f"Error deleting linked models from {app_name} in Redis",
            )
        return "Success!"

    async def get_linked_models(self, app_name: str) -> list[JsonValue]:
        if not await self._store.app_exists(app_name):
            raise Rejected(f"No application with name '{app_name}' exists.")
        return list[JsonValue](await self._store.get_linked_models(app_name))

    # ------------------------------------------------------------------ models

    async def add_model(self, request: AddModel) -> str:
        name, version = request.model_name, request.model_version
        async with self._write_lock:
            if await self._store.model_exists(name, version):
                raise Rejected(f"model with name '{name}' and version '{version}' already exists")
            await self._check_consistent_with_links(name, request.input_type)
            model = ModelInfo(
                name=name,
                version=version,
                input_type=request.input_type,
                labels=request.labels,
                container_name=request.container_name,
                model_data_path=request.model_data_path,
                batch_size=request.batch_size,
            )
            await self._write(self._store.add_model(model), f"Error adding model {name}:{version} to Redis")
            # Adding a model always makes it the current version, as in the original.
            await self._set_current_version(name, version)
        return (
            f"Successfully added model with name '{name}' and input type "
            f"'{request.input_type.readable_name}'"
        )

    async def set_model_version(self, request: ModelRef) -> str:
        name, version = request.model_name, request.model_version
        async with self._write_lock:
            versions = await self._store.get_model_versions(name)
            if not versions:
                raise Rejected(f"Cannot set version for nonexistent model '{name}'")
            model = await self._store.get_model(name, version) if version in versions else None
            if model is None:
                logger.error("Cannot set non-existent version '%s' for model '%s'", version, name)
                raise Rejected(f"Cannot set non-existent version '{version}' for model with name '{name}'")
            await self._check_consistent_with_links(name, model.input_type)
            await self._set_current_version(name, version)
        return f"Successfully set model with name '{name}' to version '{version}'"

    async def delete_versioned_model(self, request: ModelRef) -> str:
        """``HDEL valid``; the query frontend removes the version on the ``hdel`` event."""
        name, version = request.model_name, request.model_version
        async with self._write_lock:
            await self._valid_model(name, version)
            await self._write(
                self._store.mark_model_invalid(name, version),
                f"Error deleting model with name '{name}' and version '{version}' from Redis",
            )
        return f"Successfully deleted model with name '{name}' and version '{version}'"

    async def set_model_batch_size(self, request: SetBatchSize) -> str:
        """Ours: HSET batch_size; the query frontend re-reads the model on the ``hset`` event."""
        name, version = request.model_name, request.model_version
        async with self._write_lock:
            await self._valid_model(name, version)
            await self._write(
                self._store.set_batch_size(name, version, request.batch_size),
                f"Error setting batch size of model with name '{name}' and version '{version}' in Redis",
            )
        return (
            f"Successfully set batch size of model with name '{name}' and version '{version}' "
            f"to {request.batch_size}"
        )

    async def get_all_models(self, verbose: bool) -> list[JsonValue]:
        keys = sorted(await self._store.list_model_keys())
        if not verbose:
            return [str(ModelId(name, version)) for name, version in keys]
        current: dict[str, str | None] = {}
        entries: list[JsonValue] = []
        for name, version in keys:
            model = await self._store.get_model(name, version)
            if model is None:
                continue  # removed by the query frontend's clean-up while we listed
            if name not in current:
                current[name] = await self._store.get_current_version(name)
            entries.append(model_json(model, current[name] == version))
        return entries

    async def get_model(self, request: ModelRef) -> dict[str, JsonValue]:
        model = await self._store.get_model(request.model_name, request.model_version)
        if model is None:
            return {}
        is_current = await self._store.get_current_version(model.name) == request.model_version
        return model_json(model, is_current)

    # ------------------------------------------------------------------ containers

    async def get_all_containers(self, verbose: bool) -> list[JsonValue]:
        ids = sorted(await self._store.list_container_ids())
        if not verbose:
            return [f"{name}:{version}:{replica}" for name, version, replica in ids]
        entries: list[JsonValue] = []
        for name, version, replica in ids:
            container = await self._store.get_container(name, version, replica)
            if container is not None:
                entries.append(container_json(container))
        return entries

    async def get_container(self, request: ContainerRef) -> dict[str, JsonValue]:
        container = await self._store.get_container(
            request.model_name, request.model_version, request.replica_id
        )
        return container_json(container) if container is not None else {}

    # ------------------------------------------------------------------ helpers

    async def _valid_model(self, name: str, version: str) -> ModelInfo:
        model = await self._store.get_model(name, version)
        if model is None:
            raise Rejected(f"model with name '{name}' and version '{version}' does not exist")
        if not model.is_valid:
            raise Rejected(f"model with name '{name}' and version '{version}' is already marked as 'invalid'")
        return model

    async def _check_consistent_with_links(self, model_name: str, model_type: InputType) -> None:
        """Every app linked to ``model_name`` must have the model's input type."""
        for app_name in sorted(await self._store.list_app_names()):
            if model_name not in await self._store.get_linked_models(app_name):
                continue
            app = await self._store.get_app(app_name)
            if app is not None and app.input_type != model_type:
                raise Rejected(
                    f"Model with name '{model_name}' is already linked to app '{app_name}' using input "
                    f"type '{app.input_type.readable_name}'. The input type you provided for a new "
                    f"version of the model, '{model_type.readable_name}', is not compatible."
                )

    async def _set_current_version(self, name: str, version: str) -> None:
        # "name'<n>'" without a space is the original's text.
        await self._write(
            self._store.set_current_version(name, version),
            f"Version '{version}' does not exist for model with name'{name}'",
        )

    @staticmethod
    async def _write(operation: Awaitable[object], failure: str) -> None:
        """Await a store write; a Redis failure becomes the original's 400 text."""
        try:
            await operation
        except StateError as exc:
            logger.error("%s: %s", failure, exc.cause)
            raise Rejected(failure) from exc


def _with_selection(app: AppInfo, choice: SelectionChoice | None) -> AppInfo:
    if choice is None:
        return app
    return AppInfo(
        app.name,
        app.input_type,
        app.default_output,
        app.latency_slo_micros,
        policy=choice.policy,
        confidence_threshold=choice.confidence_threshold,
        policy_weights=choice.policy_weights,
    )
