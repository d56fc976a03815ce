"""Label a Spark DataFrame with an rs model: `pip install "review-sentiment[spark]"`.

    from review_sentiment.spark import label_spark_dataframe

    labeled = label_spark_dataframe(spark.read.parquet("reviews/"), "models/shop")
    labeled.write.parquet("labeled/")

Each Python worker loads the model once (`batch.cached_labeler`) and labels its partitions with `mapInPandas`
in batches of `batch_rows`, exactly as `rs predict` labels a file's chunks: the same columns are added
(predicted_label, confidence, prob_LABEL..., note), every row is kept in order, and a row without text gets an
empty label and the reason in note. The model folder must be readable at the same path on every executor
(a shared file system, or copied beside the job); a hub id comes from each worker's Hugging Face cache or the hub. Bad
input (a missing text column, a folder that is not a model, a checkpoint rs did not train whose classes need
`ScoringOptions(labels=...)`, an empty DataFrame) fails on the driver before any task is scheduled.
"""

from __future__ import annotations

from pathlib import Path

from review_sentiment.options import ScoringOptions

DEFAULT_BATCH_ROWS = 10_000  # rows labeled at a time in a worker, as rs predict's --chunk-size


def label_spark_dataframe(
    frame,
    model_dir: str | Path,
    *,
    text_col: str | None = None,
    scoring: ScoringOptions = ScoringOptions(),
    batch_rows: int = DEFAULT_BATCH_ROWS,
):
    """`frame` (a pyspark.sql.DataFrame) with the columns `rs predict` adds; lazy, like any Spark transformation."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    from review_sentiment.batch import CONFIDENCE_COLUMN, LABEL_COLUMN, NOTE_COLUMN, LabelingPlan, cached_labeler
    from review_sentiment.io import SAMPLE_ROWS

    plan = LabelingPlan(model_dir, frame.columns, frame.limit(SAMPLE_ROWS).toPandas(), text_col, scoring)
    kinds = {LABEL_COLUMN: StringType(), CONFIDENCE_COLUMN: DoubleType(), NOTE_COLUMN: StringType()}
    added = [StructField(name, kinds.get(wanted, DoubleType()), True) for wanted, name in plan.names.items()]
    schema = StructType([*frame.schema.fields, *added])
    model, columns, text_column = plan.model_dir, plan.columns, plan.text_column

    def label_batches(batches):
        labeler = cached_labeler(model, columns, text_column, scoring)
        for batch in batches:
            for start in range(0, len(batch), batch_rows):
                yield labeler.label(batch.iloc[start : start + batch_rows].reset_index(drop=True))

    return frame.mapInPandas(label_batches, schema)
