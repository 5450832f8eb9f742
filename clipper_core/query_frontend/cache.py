"""Prediction cache: bounded in bytes, LRU eviction, coalescing of identical in-flight queries.

Pure: no I/O and no event loop. The gateway stores its queued-query record as the *pending*
value of a key; a second identical query finds that record and waits on it instead of
asking the model again (one model call serves all of them). When the output arrives it is
inserted with :meth:`PredictionCache.put`, which also clears the pending record, so a
response that comes after every caller gave up at its SLO still fills the cache.

Eviction is LRU (an ``OrderedDict``: a hit moves the entry to the end, eviction pops from
the front). LRU over CLOCK because both are O(1) here and ``OrderedDict`` does the
bookkeeping in C. Pending records are not in the LRU and cost no bytes: they hold no output
yet and are bounded by the queue, not by the cache.

Size accounting: output bytes + payload bytes + model name and version bytes + a fixed,
measured per-entry overhead (``ENTRY_OVERHEAD_BYTES``), so the byte bound is close to the
memory the entries really hold, and a cache full of tiny outputs for huge inputs is still
bounded.
An entry larger than the whole cache is never inserted.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, Generic, TypeVar

__all__ = [
    "DEFAULT_CACHE_SIZE_BYTES",
    "ENTRY_OVERHEAD_BYTES",
    "CacheKey",
    "PredictionCache",
    "entry_size_bytes",
]

DEFAULT_CACHE_SIZE_BYTES: Final = 33_554_432  # 32 MiB, the original's --prediction_cache_size
# Memory an entry costs beyond its payload and output lengths: the key tuple (64 B), the
# payload and output bytes objects' headers (33 B each, malloc-rounded), the OrderedDict
# entry, index and linked-list node, and the dict's growth slack. Measured with tracemalloc
# (CPython 3.11, 50k-350k entries, payloads 8-1000 B): 235-246 B; rounded up so that the
# byte bound is a bound on the memory the entries really hold. tests/unit/test_cache.py
# re-measures it.
ENTRY_OVERHEAD_BYTES: Final = 256

# (model name, model version, input payload bytes). bytes caches its own hash, so the
# tuple hash is cheap even for large payloads after the first lookup.
CacheKey = tuple[str, str, bytes]

P = TypeVar("P")


def entry_size_bytes(key: CacheKey, output: bytes) -> int:
    """Bytes charged to the cache for ``output`` stored under ``key``."""
    return len(key[0]) + len(key[1]) + len(key[2]) + len(output) + ENTRY_OVERHEAD_BYTES


class PredictionCache(Generic[P]):
    """Completed outputs bounded in bytes (LRU), plus pending records of in-flight queries."""

    __slots__ = ("_entries", "_pending", "capacity_bytes", "evictions", "size_bytes")

    def __init__(self, capacity_bytes: int = DEFAULT_CACHE_SIZE_BYTES) -> None:
        if capacity_bytes < 0:
            raise ValueError(f"cache capacity must be >= 0 bytes, got {capacity_bytes}")
        self.capacity_bytes = capacity_bytes
        self.size_bytes = 0
        self.evictions = 0
        self._entries: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._pending: dict[CacheKey, P] = {}

    def __len__(self) -> int:
        """Number of completed entries."""
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    # ------------------------------------------------------------------ completed entries

    def get(self, key: CacheKey) -> bytes | None:
        """The cached output for ``key`` (marking it most recently used), or None."""
        output = self._entries.get(key)
        if output is not None:
            self._entries.move_to_end(key)
        return output

    def put(self, key: CacheKey, output: bytes) -> bool:
        """Store a model output and clear the key's pending record; True if inserted.

        An existing entry is kept as it is (outputs for one key never differ in meaning).
        """
        self._pending.pop(key, None)
        if key in self._entries:
            return False
        size = entry_size_bytes(key, output)
        if size > self.capacity_bytes:
            return False
        self._entries[key] = output
        self.size_bytes += size
        if self.size_bytes > self.capacity_bytes:
            self._evict()
        return True

    def _evict(self) -> None:
        entries = self._entries
        while self.size_bytes > self.capacity_bytes:
            old_key, old_output = entries.popitem(last=False)
            self.size_bytes -= entry_size_bytes(old_key, old_output)
            self.evictions += 1

    def keys_lru_order(self) -> list[CacheKey]:
        """Completed keys, least recently used first (for tests and debugging)."""
        return list(self._entries)

    def purge_model(self, name: str, version: str) -> int:
        """Forget every output and pending record of one model version; returns how many outputs.

        Called when the version is removed: the same name and version may be deployed again
        with another model, whose answers must not be the old ones. A scan of the whole
        cache, so removals pay for it and lookups stay a single dict probe.
        """
        entries = self._entries
        doomed = [key for key in entries if key[0] == name and key[1] == version]
        for key in doomed:
            self.size_bytes -= entry_size_bytes(key, entries.pop(key))
        pending = self._pending
        for key in [key for key in pending if key[0] == name and key[1] == version]:
            del pending[key]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()
        self._pending.clear()
        self.size_bytes = 0

    # ------------------------------------------------------------------ pending records

    def get_pending(self, key: CacheKey) -> P | None:
        """The in-flight record an identical earlier query left, or None."""
        return self._pending.get(key)

    def set_pending(self, key: CacheKey, record: P) -> None:
        """Mark ``key`` as in flight; later identical queries find ``record``."""
        self._pending[key] = record

    def discard_pending(self, key: CacheKey, record: P | None = None) -> None:
        """Forget the key's pending record (the query failed or expired).

        With ``record`` given, only that exact record is removed, so a failure of an old
        query never clears the record of a newer one for the same key.
        """
        if record is None or self._pending.get(key) is record:
            self._pending.pop(key, None)

    @property
    def pending_count(self) -> int:
        return len(self._pending)
