"""PySpark: fit a pyspark.ml LogisticRegression on a few rows, deploy it with deployers.pyspark,
query. Spark runs locally on the machine's Java (17+), bound to loopback.

    python examples/frameworks/pyspark_example.py     # needs `pip install .[pyspark]` and Java
"""

from __future__ import annotations

from _common import run_example
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.linalg import Vectors

from clipper_admin.deployers import pyspark as pyspark_deployer
from containers.python.pyspark_container import local_spark_session

ROWS = [([0.0, 1.0], 0.0), ([0.5, 1.5], 0.0), ([1.0, 0.5], 0.0), ([3.0, 0.0], 1.0),
        ([4.0, 1.0], 1.0), ([3.5, -0.5], 1.0), ([0.2, 2.0], 0.0), ([5.0, 0.2], 1.0)]


def predict(spark, model, inputs):
    frame = spark.createDataFrame([(Vectors.dense([float(v) for v in x]),) for x in inputs], ["features"])
    return [str(float(r.probability[1])) for r in model.transform(frame).select("probability").collect()]


def main() -> None:
    spark = local_spark_session()
    try:
        frame = spark.createDataFrame([(Vectors.dense(x), y) for x, y in ROWS], ["features", "label"])
        model = LogisticRegression(maxIter=20).fit(frame)
        run_example(
            "pyspark-example",
            # Spark plans the first query's job: seconds, beyond the default 3 s SLO.
            lambda conn: pyspark_deployer.create_endpoint(
                conn, "pyspark-example", "doubles", predict, model, spark.sparkContext,
                slo_micros=60_000_000,
            ),
            [2.0, 0.5], [[0.0, 1.0], [4.0, 0.0]],
            lambda f: float(predict(spark, model, [f])[0]),
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
