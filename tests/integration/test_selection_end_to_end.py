"""Selection policies end to end (issue 15): real frontends, real Redis, real closure containers.

An Exp4 app over three models learns from ``/update`` until the right model outweighs two that
agree on a wrong answer; its weights survive a query-frontend restart; a straggler member never
holds an answer past the SLO; concurrent feedback loses no round; an app on the default policy
answers exactly as before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.integration.cluster_processes import Cluster, cluster, eventually

__all__ = ["cluster"]  # the fixture

RIGHT, WRONG = "1.0", "2.0"
# A straggler may add at most this to the SLO (beyond the HTTP round trip of a cached answer).
SLACK_S = 0.005


def make_constant_model(answer: str, delay_s: float = 0.0) -> Callable[[list[object]], list[str]]:
    def predict(inputs: list[object]) -> list[str]:
        if delay_s:
            import time as _time

            _time.sleep(delay_s)
        return [answer] * len(inputs)

    return predict


def _deploy(cluster: Cluster, app: str, models: dict[str, Callable[[list[object]], list[str]]],
            policy: str = "exp4", slo_micros: int = 2_000_000) -> None:
    cluster.admin("add_app", {"name": app, "input_type": "doubles", "default_output": "-1.0",
                              "latency_slo_micros": slo_micros, "selection_policy": policy})
    for name, func in models.items():
        cluster.add_model(name, "1")
        cluster.start_container(func, name, "1")
    cluster.admin("add_model_links", {"app_name": app, "model_names": list(models)})


def _answer(cluster: Cluster, app: str, x: list[float]) -> dict[str, object] | None:
    response = cluster.predict(app, {"input": x})
    if response.status_code != 200:
        return None
    answer: dict[str, object] = response.json()
    return answer if answer.get("members_answered") == answer.get("members") == 3 else None


def _update(cluster: Cluster, app: str, x: list[float], label: float, uid: int = 0) -> requests.Response:
    return requests.post(f"http://127.0.0.1:{cluster.query_port}/{app}/update",
                         json={"uid": uid, "input": x, "label": label}, timeout=15)


def _app_info(cluster: Cluster, app: str) -> dict[str, object]:
    info: dict[str, object] = json.loads(cluster.admin("get_application", {"name": app}))
    return info


def test_exp4_learns_from_feedback_and_keeps_its_weights_across_a_restart(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    _deploy(cluster, "ens", {"good": make_constant_model(RIGHT), "bad1": make_constant_model(WRONG),
                             "bad2": make_constant_model(WRONG)})
    first = eventually(lambda: _answer(cluster, "ens", [0.5]), what="all three members answering")
    # Equal weights: the two wrong models outvote the right one.
    assert (first["output"], first["default"]) == (2.0, False), first
    assert first["confidence"] == 2 / 3
    assert list(first)[:3] == ["query_id", "output", "default"]  # the original's keys come first
    for step in range(3):
        response = _update(cluster, "ens", [0.5 + step], 1.0)
        assert (response.status_code, response.text) == (200, "Feedback received? 1")
    info = _app_info(cluster, "ens")
    weights = info["selection_weights"]
    assert isinstance(weights, dict) and weights["good"] > 0.5 > weights["bad1"], info
    assert info["feedback_rounds"] == 3
    learned = eventually(lambda: _answer(cluster, "ens", [0.5]), what="answer after feedback")
    assert learned["output"] == 1.0 and learned["confidence"] > 0.5, learned

    cluster.stop_query()
    cluster.start_query()
    again = eventually(lambda: _answer(cluster, "ens", [7.5]), what="answer after restart")
    assert again["output"] == 1.0, again  # the weights came back from Redis

    # Concurrent feedback: every round counted (atomic read-modify-write in Redis).
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda i: _update(cluster, "ens", [0.5], 1.0).text, range(32)))
    assert replies == ["Feedback received? 1"] * 32
    assert _app_info(cluster, "ens")["feedback_rounds"] == 3 + 32

    # Prometheus metrics: choices, weights, completeness.
    text = requests.get(f"http://127.0.0.1:{cluster.query_port}/metrics",
                        headers={"Accept": "text/plain"}, timeout=10).text
    assert 'clipper_selection_choices_total{app="ens",model="good"}' in text
    assert 'clipper_selection_weight{app="ens",model="good"}' in text
    assert 'clipper_ensemble_members_answered_total{app="ens"}' in text
    assert 'clipper_selection_feedback_total{app="ens",result="applied"} 32.0' in text


def test_low_confidence_answers_with_the_default_output(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    cluster.admin("add_app", {"name": "unsure", "input_type": "doubles", "default_output": "-1.0",
                              "latency_slo_micros": 2_000_000, "selection_policy": "exp4",
                              "confidence_threshold": 0.9})
    for name, answer in (("one", "1.0"), ("two", "2.0"), ("three", "3.0")):
        cluster.add_model(name, "1")
        cluster.start_container(make_constant_model(answer), name, "1")
    cluster.admin("add_model_links", {"app_name": "unsure", "model_names": ["one", "two", "three"]})
    answer = eventually(lambda: _answer(cluster, "unsure", [1.5]), what="all members answering")
    assert answer["default"] is True and answer["output"] == -1.0
    explanation = answer["default_explanation"]
    assert isinstance(explanation, str) and explanation.startswith("Low confidence"), answer


def test_a_straggler_never_delays_the_ensemble_past_the_slo(cluster: Cluster) -> None:
    slo_s = 0.1
    cluster.start_management()
    cluster.start_query()
    _deploy(cluster, "fast", {"quick1": make_constant_model(RIGHT), "quick2": make_constant_model(RIGHT),
                              "slow": make_constant_model(WRONG, delay_s=1.0)},
            slo_micros=int(slo_s * 1e6))

    def two_answered() -> dict[str, object] | None:
        answer = cluster.predict("fast", {"input": [time.time()]}).json()
        return answer if answer.get("members_answered") == 2 else None

    eventually(two_answered, what="the quick members answering")
    session = requests.Session()
    url = f"http://127.0.0.1:{cluster.query_port}/fast/predict"
    # The HTTP round trip of an answer the frontend gives at once (a cached input, 2 members).
    session.post(url, json={"input": [0.25]}, timeout=5)
    overheads = []
    for _ in range(5):
        start = time.perf_counter()
        session.post(url, json={"input": [0.25]}, timeout=5)
        overheads.append(time.perf_counter() - start)
    overhead_s = sorted(overheads)[len(overheads) // 2]
    latencies = []
    for i in range(8):
        start = time.perf_counter()
        answer = session.post(url, json={"input": [1000.0 + i]}, timeout=5).json()  # never cached
        latencies.append(time.perf_counter() - start)
        assert (answer["output"], answer["members_answered"], answer["members"]) == (1.0, 2, 3), answer
        assert answer["default"] is False
    assert sorted(latencies)[len(latencies) // 2] <= slo_s + SLACK_S + overhead_s, (latencies, overhead_s)
    assert max(latencies) < slo_s + 0.1, latencies  # never anywhere near the straggler's 1 s


def test_default_policy_app_answers_exactly_as_before(cluster: Cluster) -> None:
    from tests.integration.cluster_processes import make_sum_model

    cluster.start_management()
    cluster.start_query()
    cluster.add_app("plain")
    cluster.add_model("m", "1")
    cluster.admin("add_model_links", {"app_name": "plain", "model_names": ["m"]})
    cluster.start_container(make_sum_model(), "m", "1")
    eventually(lambda: cluster.real_output("plain", [1.0, 2.0]), what="first output")
    # A "uid" in the body means nothing to the original's policy; the body is byte-identical.
    response = cluster.predict("plain", {"input": [1.0, 2.0], "uid": 3})
    assert response.content.endswith(b',"output":3.0,"default":false}'), response.content
    assert b"confidence" not in response.content
    url = f"http://127.0.0.1:{cluster.query_port}/plain/update"
    for uid, expected in ((0, "Feedback received? 1"), (5, "Feedback received? 0")):
        reply = requests.post(url, json={"uid": uid, "input": [1.0, 2.0], "label": 3.0}, timeout=5)
        assert (reply.status_code, reply.text, reply.headers["Content-Type"].split(";")[0]) == (
            200, expected, "text/plain")
    assert list(_app_info(cluster, "plain")) == [
        "input_type", "default_output", "latency_slo_micros", "name", "linked_models"]


def test_ab_split_sends_traffic_by_fixed_weights_and_follows_a_change(cluster: Cluster) -> None:
    cluster.start_management()
    cluster.start_query()
    cluster.admin("add_app", {"name": "canary", "input_type": "doubles", "default_output": "-1.0",
                              "latency_slo_micros": 2_000_000, "selection_policy": "ab",
                              "policy_weights": {"stable": 1.0, "canary": 0.0}})
    for name, answer in (("stable", RIGHT), ("canary", WRONG)):
        cluster.add_model(name, "1")
        cluster.start_container(make_constant_model(answer), name, "1")
    cluster.admin("add_model_links", {"app_name": "canary", "model_names": ["stable", "canary"]})
    eventually(lambda: cluster.real_output("canary", [0.5]), what="the stable model answering")
    assert {cluster.real_output("canary", [float(i)]) for i in range(20)} == {1.0}
    cluster.admin("set_selection_policy", {"app_name": "canary", "selection_policy": "ab",
                                           "policy_weights": {"stable": 1.0, "canary": 1.0}})

    def both_served() -> set[object] | None:
        seen = {cluster.real_output("canary", [100.0 + i]) for i in range(40)}
        return seen if seen == {1.0, 2.0} else None

    eventually(both_served, what="traffic on both models after the change")
    # A policy that does not learn answers feedback as the original.
    reply = _update(cluster, "canary", [0.5], 1.0)
    assert reply.text == "Feedback received? 1"
