"""Label a Ray Dataset with an rs model: `pip install "review-sentiment[ray]"`.

    import ray
    from review_sentiment.ray import label_ray_dataset

    labeled = label_ray_dataset(ray.data.read_parquet("reviews/"), "models/shop", concurrency=4)
    labeled.write_parquet("labeled/")

`RayLabeler` is the callable class behind it (`Dataset.map_batches(RayLabeler, fn_constructor_kwargs=...,
batch_format="pandas")`): each actor loads the model once and labels batches as `rs predict` labels a file's
chunks, adding the same columns. Row order is kept (the helper turns on Ray Data's `preserve_order`). Bad input
(a missing text column, a folder that is not an rs model, an empty Dataset) fails on the driver before any task
is scheduled.
"""

from __future__ import annotations

from pathlib import Path

from review_sentiment.options import ScoringOptions


class RayLabeler:
    """A Ray Data actor: one model loaded in `__init__`, each pandas batch labeled in `__call__`."""

    def __init__(self, model_dir: str, columns: list[str], text_column: str, scoring: ScoringOptions):
        from review_sentiment.batch import BatchLabeler

        self.labeler = BatchLabeler(model_dir, columns, text_col=text_column, scoring=scoring)

    def __call__(self, batch):
        return self.labeler.label(batch)


def label_ray_dataset(
    dataset,
    model_dir: str | Path,
    *,
    text_col: str | None = None,
    scoring: ScoringOptions = ScoringOptions(),
    batch_size: int = 1024,
    concurrency: int = 1,
    num_cpus: float = 1,
    num_gpus: float | None = None,
):
    """`dataset` (a ray.data.Dataset) with the columns `rs predict` adds; lazy, like any Ray Data transformation.
    `concurrency` actors label in parallel, each holding `num_cpus` CPUs and `num_gpus` GPUs (with GPUs, pass
    scoring=ScoringOptions("cuda")). Leave CPUs for Ray Data's own read and split tasks: actors holding all of
    a cluster's CPUs wait for them forever. Each block goes to one actor: a Dataset of one block (a small
    `from_pandas`) keeps one actor busy; `repartition` it first."""
    from ray.data import DataContext

    from review_sentiment.batch import LabelingPlan
    from review_sentiment.io import SAMPLE_ROWS

    plan = LabelingPlan(model_dir, dataset.columns(), dataset.limit(SAMPLE_ROWS).to_pandas(), text_col, scoring)
    # Rows keep their order, as in rs predict. A Dataset runs with the context it was made with, so both are set.
    for context in (dataset.context, DataContext.get_current()):
        context.execution_options.preserve_order = True
    return dataset.map_batches(
        RayLabeler,
        fn_constructor_kwargs={
            "model_dir": plan.model_dir,
            "columns": plan.columns,
            "text_column": plan.text_column,
            "scoring": scoring,
        },
        batch_format="pandas",
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
