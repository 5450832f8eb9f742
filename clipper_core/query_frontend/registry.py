"""In-memory copy of what the query path needs from Redis, kept live by keyspace events.

Applications, their links, each model's current version, registered versions and batch sizes
(core spec 5.4). Loaded once at start-up (:meth:`Registry.reload`), then updated by
:meth:`Registry.apply` for every :class:`~clipper_core.state.StateChange`; a
:class:`~clipper_core.state.Resync` reloads everything. Reads on the query path are plain dict
lookups with no awaits.

Model-side consequences (batch sizes, removed versions) are pushed to a :class:`ModelControl`
(the gateway), which this module knows only as a Protocol.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from clipper_core.errors import StateError
from clipper_core.query_frontend.outputs import EmbeddedOutput, embed_text
from clipper_core.query_frontend.selection import SelectionPolicy, resolve_policy
from clipper_core.state import AppInfo, Db, ModelId, ModelInfo, Resync, StateChange, StateStore
from clipper_core.state.schema import parse_model_key

__all__ = ["AppEntry", "ModelControl", "Registry"]

logger = logging.getLogger(__name__)

# DB 5 events after which the application is gone (the original drops routes on ``hdel``).
_APP_GONE_EVENTS: Final = frozenset({"del", "hdel", "expired", "evicted"})


class ModelControl(Protocol):
    """What the registry tells the model side (implemented by the gateway)."""

    def set_batch_size(self, model: ModelId, batch_size: int) -> None: ...

    def remove_model(self, model: ModelId) -> None: ...


@dataclass(slots=True, frozen=True)
class AppEntry:
    """One registered application, with what each query needs precomputed.

    ``policy`` is the application's selection policy, resolved once here (None when the record
    names a policy that does not exist: its queries are refused with the original's text).
    """

    info: AppInfo
    default_output: EmbeddedOutput
    slo_s: float
    policy: SelectionPolicy | None

    @classmethod
    def from_info(cls, info: AppInfo) -> AppEntry:
        return cls(
            info=info,
            default_output=embed_text(info.default_output),
            slo_s=info.latency_slo_micros / 1e6,
            policy=resolve_policy(info),
        )

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(slots=True)
class _Snapshot:
    apps: dict[str, AppEntry]
    links: dict[str, tuple[str, ...]]
    current: dict[str, ModelId]
    models: dict[ModelId, ModelInfo]


class Registry:
    """Apps, links, current versions and registered model versions of one query frontend."""

    def __init__(
        self,
        store: StateStore,
        models: ModelControl,
        on_app_added: Callable[[str], object] = lambda _name: None,
        on_app_removed: Callable[[str], object] = lambda _name: None,
    ) -> None:
        self._store = store
        self._control = models
        self._on_app_added = on_app_added
        self._on_app_removed = on_app_removed
        self._apps: dict[str, AppEntry] = {}
        self._links: dict[str, tuple[str, ...]] = {}
        self._current: dict[str, ModelId] = {}
        self._models: dict[ModelId, ModelInfo] = {}
        self._versions: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ query-path reads

    def app(self, name: str) -> AppEntry | None:
        return self._apps.get(name)

    def linked_models(self, app_name: str) -> tuple[str, ...]:
        return self._links.get(app_name, ())

    def current_model(self, model_name: str) -> ModelId | None:
        """The linked model's current version, or None when none is set."""
        return self._current.get(model_name)

    def has_version(self, model_name: str, version: str) -> bool:
        """Registered in DB 2, valid or not (the original's rule for an explicit ``version``)."""
        versions = self._versions.get(model_name)
        return versions is not None and version in versions

    def app_names(self) -> list[str]:
        return sorted(self._apps)

    # ------------------------------------------------------------------ loading

    async def reload(self) -> None:
        """Read everything from Redis and replace the in-memory copy (start-up and Resync)."""
        # One round trip per kind of record (SCAN, then one pipeline each), not one per record.
        store = self._store
        snapshot = _Snapshot(apps={}, links={}, current={}, models={})
        app_names = await store.list_app_names()
        apps = await store.get_apps(app_names)
        links = await store.get_links(app_names)
        for name, app, linked in zip(app_names, apps, links, strict=True):
            if app is not None:
                snapshot.apps[name] = AppEntry.from_info(app)
                snapshot.links[name] = tuple(linked)
        model_keys = await store.list_model_keys()
        for (name, version), info in zip(model_keys, await store.get_models(model_keys), strict=True):
            if info is not None:
                snapshot.models[ModelId(name, version)] = info
        model_names = sorted({m.name for m in snapshot.models})
        currents = await store.get_current_versions(model_names)
        for model_name, current in zip(model_names, currents, strict=True):
            # A model without a current version is simply not served (the original aborted here).
            if current is not None:
                snapshot.current[model_name] = ModelId(model_name, current)
        retired = self._install(snapshot)
        for model in retired:
            await store.delete_model(model.name, model.version)
        for entry in snapshot.apps.values():
            self._on_app_added(entry.name)
        await store.set_selection_states(
            {entry.name: entry.info.default_output for entry in snapshot.apps.values()}
        )
        logger.info(
            "Loaded %d applications and %d model versions from Redis",
            len(snapshot.apps),
            len(snapshot.models),
        )

    def _install(self, snapshot: _Snapshot) -> list[ModelId]:
        """Swap in a snapshot; returns the versions marked invalid whose records must go."""
        for name in self._apps.keys() - snapshot.apps.keys():
            self._on_app_removed(name)
        for model in self._models.keys() - snapshot.models.keys():
            self._control.remove_model(model)
        self._apps = snapshot.apps
        self._links = snapshot.links
        self._current = snapshot.current
        old_models, self._models = self._models, {}
        self._versions = {}
        return [
            model
            for model, info in snapshot.models.items()
            if self._model_changed(model, old_models.get(model), info)
        ]

    # ------------------------------------------------------------------ live changes

    async def follow(self, changes: AsyncIterator[StateChange | Resync]) -> None:
        """Apply changes until the iterator ends; one bad event never stops the loop."""
        async for change in changes:
            try:
                await self.apply(change)
            except StateError as exc:
                logger.warning("Could not apply %s: %s", change, exc.cause)
            except Exception:
                logger.exception("Failed to apply %s", change)

    async def apply(self, change: StateChange | Resync) -> None:
        """Update the in-memory copy for one keyspace event."""
        if isinstance(change, Resync):
            await self.reload()
            return
        if change.db is Db.APPLICATION:
            await self._app_event(change.key, change.event)
        elif change.db is Db.APP_MODEL_LINKS:
            self._links[change.key] = tuple(await self._store.get_linked_models(change.key))
        elif change.db is Db.METADATA:
            await self._current_version_event(change.key, change.event)
        elif change.db is Db.MODEL:
            name, version = parse_model_key(change.key)
            model = ModelId(name, version)
            if self._model_changed(model, self._models.get(model), await self._read_model(name, version)):
                # As the original's clean-up after ``HDEL valid``: the record itself goes last.
                await self._store.delete_model(name, version)

    async def _app_event(self, name: str, event: str) -> None:
        if event in _APP_GONE_EVENTS:
            self._remove_app(name)
            return
        if event != "hset":
            return
        entry = await self._read_app(name)
        if entry is None:
            self._remove_app(name)
            return
        self._links[name] = tuple(await self._store.get_linked_models(name))
        self._apps[name] = entry
        self._on_app_added(name)
        await self._store.set_selection_state(name, entry.info.default_output)
        logger.info("Application %s registered (input type %s)", name, entry.info.input_type.readable_name)

    def _remove_app(self, name: str) -> None:
        if self._apps.pop(name, None) is not None:
            self._links.pop(name, None)
            self._on_app_removed(name)
            logger.info("Application %s removed", name)

    async def _current_version_event(self, model_name: str, event: str) -> None:
        version = None if event == "del" else await self._store.get_current_version(model_name)
        if version is None:
            if self._current.pop(model_name, None) is not None:
                logger.info("Model %s has no current version any more", model_name)
            return
        self._current[model_name] = ModelId(model_name, version)
        logger.info("Model %s current version is now %s", model_name, version)

    def _model_changed(self, model: ModelId, old: ModelInfo | None, new: ModelInfo | None) -> bool:
        """Bring versions, batch size and liveness of one model version in line with DB 2.

        Returns True when the version is marked invalid and its DB 2 record should be deleted.
        """
        if new is None:
            self._models.pop(model, None)
            versions = self._versions.get(model.name)
            if versions is not None:
                versions.discard(model.version)
                if not versions:
                    del self._versions[model.name]
            if old is not None and old.is_valid:
                self._control.remove_model(model)
                logger.info("Model %s deleted", model)
            return False
        self._models[model] = new
        self._versions.setdefault(model.name, set()).add(model.version)
        if old is None or old.batch_size != new.batch_size:
            self._control.set_batch_size(model, new.batch_size)
        if new.is_valid:
            return False
        if old is None or old.is_valid:
            # ``HDEL valid`` is how the management frontend deletes a version (spec 5.4).
            self._control.remove_model(model)
            logger.info("Model %s marked invalid; replicas taken out of rotation", model)
        return True

    # ------------------------------------------------------------------ reading records

    async def _read_app(self, name: str) -> AppEntry | None:
        try:
            info = await self._store.get_app(name)
        except StateError as exc:
            logger.warning("Ignoring application %s: %s", name, exc.cause)
            return None
        return None if info is None else AppEntry.from_info(info)

    async def _read_model(self, name: str, version: str) -> ModelInfo | None:
        try:
            return await self._store.get_model(name, version)
        except StateError as exc:
            logger.warning("Ignoring model %s:%s: %s", name, version, exc.cause)
            return None
