"""Quickstart: a local Clipper cluster serving a Python function, queried over HTTP.

    python examples/basic_query/example.py                # run once, print, stop the cluster
    python examples/basic_query/example.py --keep-running # serve until Ctrl-C (try the curl line)

Runs everything as local processes (LocalContainerManager): redis-server, the management and
query frontends and one model replica. Needs `make install` (or redis-server on PATH).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import requests

from clipper_admin import ClipperConnection, ClipperException, LocalContainerManager
from clipper_admin.clipper_admin import LOG_DATE_FORMAT, LOG_FORMAT
from clipper_admin.deployers import python as python_deployer

APP_NAME = "hello-world"
MODEL_NAME = "feature-sum-model"
QUERY = {"input": [1.1, 2.2, 3.3]}
ANSWER_TIMEOUT_S = 60.0


def feature_sum(xs):
    """The model: one string per input, the sum of its features."""
    return [str(sum(x)) for x in xs]


class QueryFailed(Exception):
    """The query frontend answered with an error instead of a prediction."""


def predict_until_answered(query_addr: str) -> dict:
    """POST the query until the model (not the default output) answers; the new replica
    registers with the query frontend a moment after it starts.

    Raises:
        QueryFailed: an error reply (HTTP status and the frontend's JSON error).
    """
    url = f"http://{query_addr}/{APP_NAME}/predict"
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        response = requests.post(url, json=QUERY, timeout=10)
        if response.status_code != 200:
            raise QueryFailed(f"POST {url} answered HTTP {response.status_code}: {response.text}")
        reply = response.json()
        if not reply.get("default") or time.monotonic() > deadline:
            return reply
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep-running", action="store_true", help="serve until Ctrl-C")
    args = parser.parse_args()
    logging.basicConfig(format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT, level=logging.INFO)

    clipper_conn = ClipperConnection(LocalContainerManager())
    try:
        clipper_conn.start_clipper()
        clipper_conn.register_application(APP_NAME, "doubles", "-1.0", 100000)
        python_deployer.deploy_python_closure(
            clipper_conn, name=MODEL_NAME, version=1, input_type="doubles", func=feature_sum
        )
        clipper_conn.link_model_to_app(APP_NAME, MODEL_NAME)
        query_addr = clipper_conn.get_query_addr()
        reply = predict_until_answered(query_addr)
        print(f"POST http://{query_addr}/{APP_NAME}/predict {json.dumps(QUERY)}")
        print(json.dumps(reply))
        if reply.get("default"):
            print("The model did not answer in time; see the logs in", clipper_conn.cm.paths.log_dir)
            return 1
        print(f"sum of {QUERY['input']} = {reply['output']}")
        if args.keep_running:
            print(
                "Serving until Ctrl-C. Try:\n  curl -X POST --header \"Content-Type:application/json\" "
                f"-d '{json.dumps(QUERY)}' {query_addr}/{APP_NAME}/predict"
            )
            while True:
                time.sleep(3600)
        return 0
    except ClipperException as exc:
        print(f"Clipper error: {exc}")
        return 1
    except QueryFailed as exc:
        print(f"Query failed: {exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        clipper_conn.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
