"""deployers.pyspark end to end: a pyspark.ml and a pyspark.mllib LogisticRegression trained on a
handful of rows, served by containers.python.pyspark_container through LocalContainerManager,
answer like the models in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from clipper_admin import ClipperException, __registry__, __version__
from tests.frameworks.conftest import (
    Cluster,
    assert_answers_match,
    assert_raising_func_answers_default,
    model_dir_without,
    predict,
    unique,
)

pytestmark = [pytest.mark.frameworks, pytest.mark.timeout(600)]

IMAGE = f"{__registry__}/python311-pyspark-container:{__version__}"
# Spark plans and compiles the first query's job: seconds, beyond the 3 s default SLO.
SLO_MICROS = 60_000_000
ROWS = [([0.0, 1.0], 0.0), ([0.5, 1.5], 0.0), ([1.0, 0.5], 0.0), ([3.0, 0.0], 1.0),
        ([4.0, 1.0], 1.0), ([3.5, -0.5], 1.0), ([0.2, 2.0], 0.0), ([5.0, 0.2], 1.0)]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from containers.python.pyspark_container import local_spark_session

    session = local_spark_session()
    yield session
    session.stop()


def ml_probability(spark, model, inputs):  # type: ignore[no-untyped-def]
    from pyspark.ml.linalg import Vectors

    if any(x[0] < -1000 for x in inputs):
        raise ValueError("feature 0 below -1000 is refused")
    frame = spark.createDataFrame([(Vectors.dense([float(v) for v in x]),) for x in inputs], ["features"])
    return [str(float(row.probability[1])) for row in model.transform(frame).select("probability").collect()]


def mllib_class(spark, model, inputs):  # type: ignore[no-untyped-def]
    return [str(float(model.predict([float(v) for v in x]))) for x in inputs]


def test_ml_logistic_regression_answers_like_in_process(cluster: Cluster, spark: Any) -> None:
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.linalg import Vectors

    from clipper_admin.deployers import pyspark as pyspark_deployer

    frame = spark.createDataFrame([(Vectors.dense(x), y) for x, y in ROWS], ["features", "label"])
    model = LogisticRegression(maxIter=20, regParam=0.01).fit(frame)
    app = unique("spark-ml")
    pyspark_deployer.create_endpoint(
        cluster.conn, app, "doubles", ml_probability, model, spark.sparkContext, slo_micros=SLO_MICROS
    )

    def expected(x: list[float]) -> float:
        return float(ml_probability(spark, model, [x])[0])

    assert_answers_match(cluster.conn, app, [2.0, 0.5], [[0.0, 1.0], [4.0, 0.0], [2.5, 0.7]], expected)
    assert_raising_func_answers_default(cluster.conn, app, [-5000.0, 0.0], "feature 0 below -1000 is refused")
    assert predict(cluster.conn, app, {"input": [2.0, 0.5]})["default"] is False


def test_mllib_logistic_regression_answers_like_in_process(cluster: Cluster, spark: Any) -> None:
    from pyspark.mllib.classification import LogisticRegressionWithLBFGS
    from pyspark.mllib.regression import LabeledPoint

    from clipper_admin.deployers import pyspark as pyspark_deployer

    sc = spark.sparkContext
    points = sc.parallelize([LabeledPoint(y, x) for x, y in ROWS])
    model = LogisticRegressionWithLBFGS.train(points, iterations=20)
    app = unique("spark-mllib")
    pyspark_deployer.create_endpoint(
        cluster.conn, app, "doubles", mllib_class, model, sc, slo_micros=SLO_MICROS
    )

    def expected(x: list[float]) -> float:
        return float(model.predict(x))

    batch = [[0.0, 1.0], [4.0, 0.0], [0.3, 1.8], [4.5, 0.5]]
    assert {expected(x) for x in batch} == {0.0, 1.0}  # both classes are exercised
    assert_answers_match(cluster.conn, app, [4.0, 1.0], batch, expected)


def test_metadata_without_model_class_is_refused_naming_the_file(cluster: Cluster, tmp_path: Path) -> None:
    model_dir = model_dir_without(tmp_path, {
        "func.pkl": cloudpickle.dumps(mllib_class),
        "metadata.json": json.dumps({"model": "x"}).encode(),
    })
    name = unique("spark-bad")
    pattern = r"metadata\.json cannot be loaded: ModelFileError: .* has no model_class"
    with pytest.raises(ClipperException, match=pattern):
        cluster.conn.build_and_deploy_model(name, 1, "doubles", model_dir, IMAGE)
    assert "ERROR: cannot load the model from" in cluster.replica_log(name)
