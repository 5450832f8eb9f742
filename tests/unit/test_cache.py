"""PredictionCache: hits, coalescing records, byte bound, LRU order, oversize, late fill."""

from __future__ import annotations

import gc
import struct
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clipper_core.query_frontend.cache import (
    DEFAULT_CACHE_SIZE_BYTES,
    ENTRY_OVERHEAD_BYTES,
    CacheKey,
    PredictionCache,
    entry_size_bytes,
)


def key(payload: bytes, name: str = "m", version: str = "1") -> CacheKey:
    return (name, version, payload)


def test_default_capacity_is_32_mib() -> None:
    assert PredictionCache().capacity_bytes == DEFAULT_CACHE_SIZE_BYTES == 32 * 1024 * 1024


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ValueError):
        PredictionCache(-1)


def test_miss_then_hit() -> None:
    cache: PredictionCache[object] = PredictionCache(10_000)
    assert cache.get(key(b"a")) is None
    assert cache.put(key(b"a"), b"out")
    assert cache.get(key(b"a")) == b"out"
    assert len(cache) == 1


def test_key_includes_model_name_and_version() -> None:
    cache: PredictionCache[object] = PredictionCache(10_000)
    cache.put(key(b"a", "m", "1"), b"v1")
    assert cache.get(key(b"a", "m", "2")) is None
    assert cache.get(key(b"a", "n", "1")) is None
    assert cache.get(key(b"a", "m", "1")) == b"v1"


def test_size_counts_output_and_key_bytes() -> None:
    cache: PredictionCache[object] = PredictionCache(10_000)
    cache.put(key(b"12345"), b"abc")
    assert cache.size_bytes == len("m") + len("1") + 5 + 3 + ENTRY_OVERHEAD_BYTES
    assert cache.size_bytes == entry_size_bytes(key(b"12345"), b"abc")


def test_entry_overhead_matches_the_memory_entries_really_hold() -> None:
    """A full cache's charged bytes must cover what tracemalloc sees its entries allocate, and
    not overstate it by much (the constant was measured at 235-246 B per entry)."""
    cache: PredictionCache[object] = PredictionCache(1 << 40)
    entries = 40_000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(entries):
            # Fresh payload and output objects per entry, as parsed requests and RPC replies are.
            cache.put(key(struct.pack("<ddd", 0.5, 1.0, float(i))), b"%.1f" % (i % 10))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    charged = cache.size_bytes
    assert held <= charged
    assert charged <= 1.25 * held


def test_existing_entry_is_not_replaced() -> None:
    cache: PredictionCache[object] = PredictionCache(10_000)
    assert cache.put(key(b"a"), b"first")
    assert not cache.put(key(b"a"), b"second")
    assert cache.get(key(b"a")) == b"first"
    assert cache.size_bytes == entry_size_bytes(key(b"a"), b"first")


def test_byte_bound_evicts_least_recently_used_first() -> None:
    one = entry_size_bytes(key(b"0"), b"x" * 10)
    cache: PredictionCache[object] = PredictionCache(3 * one)
    for i in range(3):
        cache.put(key(b"%d" % i), b"x" * 10)
    assert cache.keys_lru_order() == [key(b"0"), key(b"1"), key(b"2")]
    cache.get(key(b"0"))  # now most recently used
    cache.put(key(b"3"), b"x" * 10)
    assert cache.get(key(b"1")) is None  # the least recently used went
    assert cache.keys_lru_order() == [key(b"2"), key(b"0"), key(b"3")]
    assert cache.size_bytes == 3 * one
    assert cache.evictions == 1


def test_large_entry_evicts_as_many_as_needed() -> None:
    small = entry_size_bytes(key(b"0"), b"")
    cache: PredictionCache[object] = PredictionCache(10 * small)
    for i in range(10):
        cache.put(key(b"%d" % i), b"")
    cache.put(key(b"9"), b"")  # already present: no change
    big_output = b"y" * (4 * small - ENTRY_OVERHEAD_BYTES - 3)
    assert cache.put(key(b"b"), big_output)
    assert cache.size_bytes <= cache.capacity_bytes
    assert cache.get(key(b"b")) == big_output
    assert [k[2] for k in cache.keys_lru_order()] == [b"4", b"5", b"6", b"7", b"8", b"9", b"b"]


def test_output_larger_than_the_whole_cache_is_not_inserted() -> None:
    cache: PredictionCache[object] = PredictionCache(1000)
    cache.put(key(b"keep"), b"small")
    assert not cache.put(key(b"huge"), b"z" * 1000)
    assert cache.get(key(b"huge")) is None
    assert cache.get(key(b"keep")) == b"small"  # nothing evicted for it


def test_zero_capacity_caches_nothing() -> None:
    cache: PredictionCache[object] = PredictionCache(0)
    assert not cache.put(key(b"a"), b"")
    assert len(cache) == 0 and cache.size_bytes == 0


def test_pending_record_is_shared_and_cleared_by_put() -> None:
    cache: PredictionCache[str] = PredictionCache(10_000)
    assert cache.get_pending(key(b"a")) is None
    cache.set_pending(key(b"a"), "query-1")
    assert cache.get_pending(key(b"a")) == "query-1"
    assert cache.get(key(b"a")) is None  # pending is not a hit
    assert cache.pending_count == 1
    cache.put(key(b"a"), b"out")
    assert cache.get_pending(key(b"a")) is None
    assert cache.get(key(b"a")) == b"out"


def test_pending_records_cost_no_bytes() -> None:
    cache: PredictionCache[str] = PredictionCache(100)
    for i in range(1000):
        cache.set_pending(key(b"%d" % i), "q")
    assert cache.size_bytes == 0 and cache.pending_count == 1000


def test_discard_pending_only_removes_the_named_record() -> None:
    cache: PredictionCache[str] = PredictionCache(10_000)
    cache.set_pending(key(b"a"), "old")
    cache.set_pending(key(b"a"), "new")
    cache.discard_pending(key(b"a"), "old")
    assert cache.get_pending(key(b"a")) == "new"
    cache.discard_pending(key(b"a"), "new")
    assert cache.get_pending(key(b"a")) is None
    cache.discard_pending(key(b"a"))  # absent: no error


def test_late_fill_after_pending_was_dropped() -> None:
    """A response that arrives after every caller gave up still fills the cache."""
    cache: PredictionCache[str] = PredictionCache(10_000)
    cache.set_pending(key(b"a"), "q")
    cache.discard_pending(key(b"a"), "q")
    assert cache.put(key(b"a"), b"late")
    assert cache.get(key(b"a")) == b"late"


def test_oversize_put_still_clears_pending() -> None:
    cache: PredictionCache[str] = PredictionCache(10)
    cache.set_pending(key(b"a"), "q")
    assert not cache.put(key(b"a"), b"x" * 100)
    assert cache.get_pending(key(b"a")) is None


def test_purge_model_forgets_only_that_version() -> None:
    cache: PredictionCache[object] = PredictionCache(10_000)
    cache.put(key(b"a", "m", "1"), b"old")
    cache.put(key(b"b", "m", "1"), b"old")
    cache.put(key(b"a", "m", "2"), b"v2")
    cache.put(key(b"a", "m1", ""), b"other")  # a name that prefixes-matches must survive
    cache.set_pending(key(b"c", "m", "1"), "in flight")
    cache.set_pending(key(b"c", "m", "2"), "kept")
    assert cache.purge_model("m", "1") == 2
    assert cache.get(key(b"a", "m", "1")) is None and cache.get(key(b"b", "m", "1")) is None
    assert cache.get_pending(key(b"c", "m", "1")) is None
    assert cache.get(key(b"a", "m", "2")) == b"v2"
    assert cache.get(key(b"a", "m1", "")) == b"other"
    assert cache.get_pending(key(b"c", "m", "2")) == "kept"
    assert cache.size_bytes == entry_size_bytes(key(b"a", "m", "2"), b"v2") + entry_size_bytes(
        key(b"a", "m1", ""), b"other"
    )
    assert cache.purge_model("m", "1") == 0


def test_clear() -> None:
    cache: PredictionCache[str] = PredictionCache(10_000)
    cache.put(key(b"a"), b"x")
    cache.set_pending(key(b"b"), "q")
    cache.clear()
    assert len(cache) == 0 and cache.size_bytes == 0 and cache.pending_count == 0


@given(
    capacity=st.integers(min_value=0, max_value=2000),
    ops=st.lists(
        st.tuples(st.booleans(), st.integers(0, 30), st.binary(max_size=200)), max_size=200
    ),
)
def test_size_is_exact_and_bounded(capacity: int, ops: list[tuple[bool, int, bytes]]) -> None:
    cache: PredictionCache[object] = PredictionCache(capacity)
    for is_put, k, output in ops:
        if is_put:
            cache.put(key(b"%d" % k), output)
        else:
            cache.get(key(b"%d" % k))
        assert cache.size_bytes <= capacity
    recomputed = sum(entry_size_bytes(k, cache.get(k) or b"") for k in cache.keys_lru_order())
    assert cache.size_bytes == recomputed
