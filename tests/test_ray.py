"""Ray Data with 2 CPUs: labels must equal `rs predict`'s, rows (in order) and columns kept."""

import pandas as pd
import pytest

from review_sentiment.errors import RsError
from tests.conftest import as_text_cells, labeled_by_rs_predict, optional_module

ray = optional_module("ray", "ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_labels_as_rs_predict_does(ray_cluster, tmp_path, tiny_model, two_thousand_reviews):
    from review_sentiment.ray import label_ray_dataset

    expected = labeled_by_rs_predict(two_thousand_reviews, tiny_model, tmp_path / "out.csv")
    reviews = pd.read_csv(two_thousand_reviews, dtype=str, keep_default_na=False)
    dataset = ray.data.from_pandas(reviews).repartition(4)
    labeled = label_ray_dataset(dataset, tiny_model, batch_size=300, concurrency=2, num_cpus=0.5).to_pandas()
    assert list(labeled.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(as_text_cells(labeled), expected)


def test_bad_input_fails_on_the_driver(ray_cluster, tiny_model, tmp_path):
    from review_sentiment.ray import label_ray_dataset

    dataset = ray.data.from_pandas(pd.DataFrame({"id": ["1"], "review": ["좋아요"]}))
    with pytest.raises(RsError, match="not a column"):
        label_ray_dataset(dataset, tiny_model, text_col="text")
    with pytest.raises(RsError, match="nothing to label"):
        label_ray_dataset(dataset.limit(0), tiny_model)
    with pytest.raises(RsError, match="no model"):
        label_ray_dataset(dataset, tmp_path)
