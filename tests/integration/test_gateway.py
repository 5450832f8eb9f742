"""ModelGateway end to end: real ROUTER, fake containers (real DEALER sockets), real Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import cloudpickle
import pytest

from clipper_core.errors import ModelFailed, NoConnectedModels
from clipper_core.query_frontend.gateway import ModelGateway
from clipper_core.rpc import HeartbeatType, InputType
from clipper_core.settings import RedisOptions
from clipper_core.state import ModelId, ModelInfo, StateStore
from tests.helpers import RedisServer, stop_process, wait_until, wait_until_async
from tests.integration.fake_container import FakeContainer
from tests.integration.gateway_harness import predict, start

MODEL = ModelId("m", "1")


@pytest.fixture
async def store(redis_clean: RedisServer) -> AsyncIterator[StateStore]:
    async with StateStore(RedisOptions(redis_clean.host, redis_clean.port)) as store:
        yield store


@pytest.fixture
async def gateway(store: StateStore) -> AsyncIterator[ModelGateway]:
    gateway = await start(store)
    yield gateway
    await gateway.aclose()


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


def batch_size_in_force(gateway: ModelGateway, model: ModelId) -> int:
    return gateway._lanes[model].queue.batch_size


def queue_length(gateway: ModelGateway, model: ModelId) -> int:
    return len(gateway._lanes[model].queue)


async def connect(gateway: ModelGateway, **kwargs: object) -> FakeContainer:
    before = gateway.replica_count(ModelId(str(kwargs.get("name", "m")), str(kwargs.get("version", "1"))))
    container = await FakeContainer(gateway.rpc.port, **kwargs).start()  # type: ignore[arg-type]
    await wait_until(lambda: gateway.replica_count(ModelId(container.name, container.version)) > before)
    return container


async def test_predict_round_trip(gateway: ModelGateway) -> None:
    async with await connect(gateway):
        assert await predict(gateway, MODEL, b"abc", deadline_in(5)) == b"out:abc"


async def test_no_connected_models_without_replica(gateway: ModelGateway) -> None:
    with pytest.raises(NoConnectedModels):
        await predict(gateway, MODEL, b"abc", deadline_in(5))


async def test_cache_hit_does_not_call_the_container(gateway: ModelGateway) -> None:
    async with await connect(gateway) as container:
        assert await predict(gateway, MODEL, b"x", deadline_in(5)) == b"out:x"
        assert await predict(gateway, MODEL, b"x", deadline_in(5)) == b"out:x"
        assert len(container.requests) == 1
    # The cached output is served even once the replica is gone.
    assert await predict(gateway, MODEL, b"x", deadline_in(5)) == b"out:x"


async def test_cached_output_is_a_synchronous_lookup_counted_only_on_a_hit(gateway: ModelGateway) -> None:
    assert gateway.cached_output(MODEL, b"x") is None
    async with await connect(gateway):
        assert gateway.cached_output(MODEL, b"x") is None
        assert await predict(gateway, MODEL, b"x", deadline_in(5)) == b"out:x"
        hits_before = gateway.metrics.cache_hits
        assert gateway.cached_output(MODEL, b"x") == b"out:x"
        assert gateway.cached_output(MODEL, b"other") is None
        assert gateway.metrics.cache_hits == hits_before + 1


async def test_identical_concurrent_queries_coalesce(gateway: ModelGateway) -> None:
    release = asyncio.Event()

    async def slow(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return [b"r" + i for i in inputs]

    async with await connect(gateway, handler=slow) as container:
        calls = [asyncio.create_task(predict(gateway, MODEL, b"same", deadline_in(5))) for _ in range(5)]
        await wait_until(lambda: len(container.requests) == 1)
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.gather(*calls) == [b"rsame"] * 5
        assert [list(r.inputs) for r in container.requests] == [[b"same"]]


async def test_fixed_batch_size_groups_concurrent_queries(
    gateway: ModelGateway, store: StateStore
) -> None:
    await store.add_model(ModelInfo("m", "1", InputType.BYTES, batch_size=3))
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return inputs

    async with await connect(gateway, handler=gated) as container:
        assert batch_size_in_force(gateway, MODEL) == 3
        first = asyncio.create_task(predict(gateway, MODEL, b"q0", deadline_in(5)))
        await wait_until(lambda: len(container.requests) == 1)
        rest = [asyncio.create_task(predict(gateway, MODEL, b"q%d" % i, deadline_in(5))) for i in range(1, 8)]
        await wait_until(lambda: queue_length(gateway, MODEL) == 7)
        release.set()
        results = await asyncio.gather(first, *rest)
        assert results == [b"q%d" % i for i in range(8)]
        sizes = [len(r.inputs) for r in container.requests]
        assert sizes == [1, 3, 3, 1]
        assert list(container.requests[1].inputs) == [b"q1", b"q2", b"q3"]


async def test_container_error_fails_the_batch_at_once(gateway: ModelGateway) -> None:
    def broken(inputs: list[bytes]) -> list[bytes]:
        raise RuntimeError("division by zero in model")

    async with await connect(gateway, handler=broken):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ModelFailed) as info:
            await predict(gateway, MODEL, b"x", deadline_in(30))
        assert "division by zero in model" in info.value.explanation
        assert loop.time() - started < 5
        # The replica keeps serving after an error.
        with pytest.raises(ModelFailed):
            await predict(gateway, MODEL, b"y", deadline_in(30))


async def test_empty_inputs_do_not_stall(gateway: ModelGateway) -> None:
    async with await connect(gateway) as container:
        assert await predict(gateway, MODEL, b"", deadline_in(5)) == b"out:"
        assert await predict(gateway, MODEL, b"z", deadline_in(5)) == b"out:z"
        assert list(container.requests[0].inputs) == [b""]


async def test_remove_model_fails_queued_queries(gateway: ModelGateway, store: StateStore) -> None:
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return inputs

    async with await connect(gateway, handler=gated) as container:
        in_flight = asyncio.create_task(predict(gateway, MODEL, b"a", deadline_in(30)))
        await wait_until(lambda: len(container.requests) == 1)
        queued = asyncio.create_task(predict(gateway, MODEL, b"b", deadline_in(30)))
        await wait_until(lambda: queue_length(gateway, MODEL) == 1)
        gateway.remove_model(MODEL)
        for task in (in_flight, queued):
            with pytest.raises(ModelFailed):
                await task
        assert gateway.replica_count(MODEL) == 0
        await wait_until_async(lambda: store.list_containers(), [])
        with pytest.raises(NoConnectedModels):
            await predict(gateway, MODEL, b"c", deadline_in(5))
        release.set()


async def test_removed_model_outputs_leave_the_cache(gateway: ModelGateway) -> None:
    async with await connect(gateway):
        assert await predict(gateway, MODEL, b"x", deadline_in(5)) == b"out:x"
        assert gateway.cached_output(MODEL, b"x") == b"out:x"
        gateway.remove_model(MODEL)
        assert gateway.cached_output(MODEL, b"x") is None


async def test_answer_arriving_as_the_model_is_removed_does_not_fill_the_cache(
    gateway: ModelGateway,
) -> None:
    """The response is in, but the batcher has not handed it on yet when the version goes."""
    rpc = gateway.rpc
    send_batch = rpc.send_batch

    def send_then_remove(
        connection_id: int, input_type: InputType, inputs: list[bytes]
    ) -> asyncio.Future[list[bytes]]:
        future = send_batch(connection_id, input_type, inputs)
        # Runs before the batcher's own wake-up callback (registered later, when it awaits).
        future.add_done_callback(lambda _f: gateway.remove_model(MODEL))
        return future

    async with await connect(gateway):
        rpc.send_batch = send_then_remove  # type: ignore[method-assign]
        await asyncio.shield(gateway.submit(MODEL, b"x", deadline_in(5)))
        await asyncio.sleep(0)
        assert gateway.cached_output(MODEL, b"x") is None
        assert gateway.cache.get_pending((MODEL.name, MODEL.version, b"x")) is None


async def test_late_output_fills_the_cache_after_the_caller_gave_up(gateway: ModelGateway) -> None:
    release = asyncio.Event()

    async def slow(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return [b"late:" + i for i in inputs]

    async with await connect(gateway, handler=slow) as container:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await predict(gateway, MODEL, b"q", deadline_in(0.1))
        release.set()
        await wait_until(lambda: gateway.cache.get((MODEL.name, MODEL.version, b"q")) is not None)
        assert await predict(gateway, MODEL, b"q", deadline_in(5)) == b"late:q"
        assert len(container.requests) == 1


async def test_coalesced_caller_with_a_later_deadline_is_still_answered(gateway: ModelGateway) -> None:
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return inputs

    async with await connect(gateway, handler=gated) as container:
        blocker = asyncio.create_task(predict(gateway, MODEL, b"block", deadline_in(10)))
        await wait_until(lambda: len(container.requests) == 1)
        # Queued behind the blocker: the first caller's deadline passes in the queue, the
        # second, identical caller's does not.
        early = asyncio.create_task(predict(gateway, MODEL, b"dup", deadline_in(0.1)))
        late = asyncio.create_task(predict(gateway, MODEL, b"dup", deadline_in(10)))
        await asyncio.sleep(0.3)
        release.set()
        assert await late == b"dup"
        assert await blocker == b"block"
        # The early caller had no timeout of its own: it is answered too (shared output).
        assert await early == b"dup"


async def test_expired_query_without_a_free_replica_does_not_wait_forever(gateway: ModelGateway) -> None:
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return inputs

    async with await connect(gateway, handler=gated) as container:
        blocker = asyncio.create_task(predict(gateway, MODEL, b"block", deadline_in(10)))
        await wait_until(lambda: len(container.requests) == 1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(predict(gateway, MODEL, b"queued", deadline_in(0.1)), 5)
        assert gateway.cache.get_pending((MODEL.name, MODEL.version, b"queued")) is None
        release.set()
        await blocker


async def test_draining_replica_finishes_its_batch_and_gets_no_new_one(
    gateway: ModelGateway, store: StateStore
) -> None:
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return [b"a:" + i for i in inputs]

    async with await connect(gateway, handler=gated) as first:
        held = asyncio.create_task(predict(gateway, MODEL, b"held", deadline_in(30)))
        await wait_until(lambda: len(first.requests) == 1)
        async with await connect(gateway, handler=lambda inputs: [b"b:" + i for i in inputs]) as second:
            await first.drain()
            await wait_until(lambda: gateway.replica_count(MODEL) == 1)
            for i in range(5):
                assert await predict(gateway, MODEL, b"q%d" % i, deadline_in(30)) == b"b:q%d" % i
            assert len(first.requests) == 1 and len(second.requests) == 5
            assert len(await store.list_container_ids()) == 2  # kept while it holds a batch
            assert not first.released.is_set()
            release.set()
            assert await held == b"a:held"  # its batch completed normally
            await wait_until_async(
                lambda: store.list_container_ids(), [("m", "1", second_replica_id(gateway))]
            )
            async with asyncio.timeout(5):
                await first.released.wait()  # forgotten: its next heartbeat asks for metadata
            assert gateway.rpc.connection_count == 1


def second_replica_id(gateway: ModelGateway) -> int:
    (replica,) = gateway._lanes[MODEL].queue.replicas.values()
    return replica.replica_id


async def test_idle_draining_replica_is_removed_at_once(
    gateway: ModelGateway, store: StateStore
) -> None:
    async with await connect(gateway) as container:
        await container.drain()
        async with asyncio.timeout(5):
            await container.released.wait()
        assert await store.list_container_ids() == []
        assert gateway.replica_count(MODEL) == 0
        with pytest.raises(NoConnectedModels):
            await predict(gateway, MODEL, b"x", deadline_in(5))


async def test_silent_container_fails_its_batch_and_leaves(store: StateStore) -> None:
    gateway = await start(store, inactivity_timeout_s=0.5)
    try:
        async with await connect(gateway, handler=lambda inputs: inputs) as container:
            container.is_silent = True
            gateway.set_batch_size(MODEL, 1)
            loop = asyncio.get_running_loop()
            started = loop.time()
            in_flight = asyncio.create_task(predict(gateway, MODEL, b"x", deadline_in(30)))
            queued = asyncio.create_task(predict(gateway, MODEL, b"w", deadline_in(30)))
            with pytest.raises(ModelFailed, match="stopped responding"):
                await in_flight
            with pytest.raises(ModelFailed, match="no model container of m:1 is left"):
                await queued
            assert loop.time() - started < 10
            assert gateway.replica_count(MODEL) == 0
            with pytest.raises(NoConnectedModels):
                await predict(gateway, MODEL, b"y", deadline_in(30))
            await wait_until_async(store.list_containers, [])
    finally:
        await gateway.aclose()


async def test_wedged_container_fails_its_batch_and_registers_again(store: StateStore) -> None:
    gateway = await start(store, batch_response_grace_s=0.2)
    try:
        async with await connect(gateway) as container:
            container.ignores_predictions = True
            [first_record] = await store.list_containers()
            started = asyncio.get_running_loop().time()
            wedged = r"replica 0 of m:1 did not answer a batch of 1 within 0\.2 s"
            with pytest.raises(ModelFailed, match=wedged):
                await predict(gateway, MODEL, b"x", deadline_in(0.1))
            assert asyncio.get_running_loop().time() - started < 5
            # The container still heartbeats: it is asked for its metadata and comes back as a
            # new replica, which gets work again.
            asked_again = HeartbeatType.REQUEST_CONTAINER_METADATA
            await wait_until(lambda: asked_again in container.heartbeat_replies[1:])
            await wait_until(lambda: gateway.replica_count(MODEL) == 1)
            records = await store.list_containers()
            assert [r.replica_id for r in records] == [1] and first_record.replica_id == 0
            container.ignores_predictions = False
            assert await predict(gateway, MODEL, b"y", deadline_in(5)) == b"out:y"
    finally:
        await gateway.aclose()


async def test_batch_size_changes_live(gateway: ModelGateway) -> None:
    release = asyncio.Event()

    async def gated(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        return inputs

    async with await connect(gateway, handler=gated) as container:
        assert batch_size_in_force(gateway, MODEL) == -1  # no DB 2 record: adaptive
        gateway.set_batch_size(MODEL, 2)
        first = asyncio.create_task(predict(gateway, MODEL, b"first", deadline_in(10)))
        await wait_until(lambda: len(container.requests) == 1)
        queued = [asyncio.create_task(predict(gateway, MODEL, b"%d" % i, deadline_in(10))) for i in range(5)]
        await wait_until(lambda: queue_length(gateway, MODEL) == 5)
        gateway.set_batch_size(MODEL, 5)
        release.set()
        await asyncio.gather(first, *queued)
        assert [len(r.inputs) for r in container.requests] == [1, 5]


async def test_adaptive_batching_grows_under_concurrency(gateway: ModelGateway) -> None:
    async def model(inputs: list[bytes]) -> list[bytes]:
        await asyncio.sleep(0.002)
        return inputs

    async with await connect(gateway, handler=model) as container:

        async def client(index: int) -> None:
            for round_ in range(20):
                payload = b"%d-%d" % (index, round_)
                assert await predict(gateway, MODEL, payload, deadline_in(5)) == payload

        await asyncio.gather(*(client(i) for i in range(16)))
        sizes = [len(r.inputs) for r in container.requests]
        assert sum(sizes) == 16 * 20
        assert sizes[0] == 1 and max(sizes) > 4


async def test_metrics_follow_the_model(gateway: ModelGateway) -> None:
    async with await connect(gateway):
        await predict(gateway, MODEL, b"a", deadline_in(5))
        await predict(gateway, MODEL, b"a", deadline_in(5))
        body = gateway.metrics.render_json_report().decode()
        assert '"model:m:1:num_predictions": {\n                "count": "1"' in body
        assert '"model:m:1:cache_hit_ratio": {\n                "ratio": "0.5"' in body
        assert '"internal:rpc_request_queueing_delay": {\n                "unit": "microseconds",\n'\
            '                "size": "1"' in body
        prometheus = gateway.metrics.render_prometheus()[0].decode()
        assert 'clipper_rpc_messages_total{direction="sent",type="predict_request"} 1.0' in prometheus
    gateway.remove_model(MODEL)
    assert "model:m:1:" not in gateway.metrics.render_json_report().decode()


def upper_or_fail(inputs: list[str]) -> list[str]:
    if "boom" in inputs:
        raise ValueError("boom requested")
    return [s.upper() for s in inputs]


@pytest.fixture
def launch_closure(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Callable[..., Path]]:
    """Start ``python -m containers.python.closure_container`` serving a pickled function."""
    processes: list[subprocess.Popen[bytes]] = []

    def launch(func: Callable[[list[str]], list[str]], name: str, port: int, input_type: str) -> Path:
        (tmp_path / "func.pkl").write_bytes(cloudpickle.dumps(func))
        env = {
            **subprocess_env,
            "CLIPPER_MODEL_NAME": name,
            "CLIPPER_MODEL_VERSION": "1",
            "CLIPPER_MODEL_PATH": str(tmp_path),
            "CLIPPER_IP": "127.0.0.1",
            "CLIPPER_PORT": str(port),
            "CLIPPER_INPUT_TYPE": input_type,
        }
        log_path = tmp_path / "container.log"
        with open(log_path, "wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "containers.python.closure_container"],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            )
        return log_path

    yield launch
    for process in processes:
        stop_process(process)


async def test_real_closure_container(
    gateway: ModelGateway, store: StateStore, launch_closure: Callable[..., Path]
) -> None:
    """The container runtime as a real process: round trip, batching, ContainerError."""
    await store.add_model(ModelInfo("real", "1", InputType.STRINGS, batch_size=4))
    log_path = launch_closure(upper_or_fail, "real", gateway.rpc.port, "strings")
    model = ModelId("real", "1")
    try:
        await wait_until(lambda: gateway.replica_count(model) == 1, timeout_s=30)
    except TimeoutError:
        raise AssertionError(f"container did not register:\n{log_path.read_text()}") from None
    assert await predict(gateway, model, b"hello", deadline_in(10)) == b"HELLO"
    words = [b"w%d" % i for i in range(10)]
    results = await asyncio.gather(*(predict(gateway, model, w, deadline_in(10)) for w in words))
    assert results == [w.upper() for w in words]
    batch_sizes = gateway.metrics.models["real:1"].batch_sizes.values
    assert max(batch_sizes) <= 4 and sum(batch_sizes) == 11
    with pytest.raises(ModelFailed, match="boom requested"):
        await predict(gateway, model, b"boom", deadline_in(10))
    assert await predict(gateway, model, b"after", deadline_in(10)) == b"AFTER"


async def test_a_failure_reaches_every_coalesced_caller(gateway: ModelGateway) -> None:
    release = asyncio.Event()

    async def failing(inputs: list[bytes]) -> list[bytes]:
        await release.wait()
        raise RuntimeError("model broke")

    async with await connect(gateway, handler=failing) as container:
        calls = [asyncio.create_task(predict(gateway, MODEL, b"same", deadline_in(5))) for _ in range(3)]
        await wait_until(lambda: len(container.requests) == 1)
        release.set()
        for call in calls:
            with pytest.raises(ModelFailed, match="model broke"):
                await call
        assert len(container.requests) == 1
        assert gateway.cache.get_pending((MODEL.name, MODEL.version, b"same")) is None


async def test_the_composition_root_passes_the_model_side_settings_on(store: StateStore) -> None:
    gateway = await start(store, batch_wait_s=0.004, batch_response_grace_s=2.0, inactivity_timeout_s=7.0)
    try:
        assert (gateway.batch_wait_s, gateway.batch_response_grace_s) == (0.004, 2.0)
        assert gateway.rpc.inactivity_timeout_s == 7.0
        assert gateway.rpc.listener is gateway
        async with await connect(gateway, handler=lambda inputs: inputs):
            lane = gateway._lanes[MODEL]
            assert lane.queue.batch_wait_s == 0.004
            assert [r.response_grace_s for r in lane.queue.replicas.values()] == [2.0]
    finally:
        await gateway.aclose()
