"""Spark in local mode (local[2]): labels must equal `rs predict`'s, rows and columns kept (needs Java 17)."""

import os
import shutil
import sys

import pandas as pd
import pytest

from review_sentiment.errors import RsError
from tests.conftest import as_text_cells, labeled_by_rs_predict

pyspark = pytest.importorskip("pyspark", reason='the spark extra: pip install "review-sentiment[spark]"')
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("java") is None, reason="Spark needs Java (apt-get install openjdk-17-jdk-headless)"
    ),
]


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # the workers must run this environment's Python (a user sets PYSPARK_PYTHON the same way)
    previous = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("rs-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()
    if previous is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = previous


def test_spark_labels_as_rs_predict_does(spark, tmp_path, tiny_model, two_thousand_reviews):
    from review_sentiment.spark import label_spark_dataframe

    expected = labeled_by_rs_predict(two_thousand_reviews, tiny_model, tmp_path / "out.csv")
    reviews = pd.read_csv(two_thousand_reviews, dtype=str, keep_default_na=False)
    frame = spark.createDataFrame(reviews).repartition(3)  # several partitions, in a shuffled order
    frame = frame.orderBy(frame["id"].cast("int"))
    labeled = label_spark_dataframe(frame, tiny_model, batch_rows=500).toPandas()
    assert list(labeled.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(as_text_cells(labeled), expected)


def test_bad_input_fails_on_the_driver(spark, tiny_model, tmp_path):
    from review_sentiment.spark import label_spark_dataframe

    frame = spark.createDataFrame(pd.DataFrame({"id": ["1"], "review": ["좋아요"]}))
    with pytest.raises(RsError, match="not a column"):
        label_spark_dataframe(frame, tiny_model, text_col="text")
    with pytest.raises(RsError, match="nothing to label"):
        label_spark_dataframe(frame.limit(0), tiny_model)
    with pytest.raises(RsError, match="no model"):
        label_spark_dataframe(frame, tmp_path)
