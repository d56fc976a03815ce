import json

import pandas as pd
import pytest

from review_sentiment.config import FinetuneArguments
from review_sentiment.evaluate import evaluate_file
from review_sentiment.finetune import finetune
from review_sentiment.options import LabelOptions, ScoringOptions
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def tfidf_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "tf"
    finetune(SAMPLE, "tfidf", FinetuneArguments(), output_dir=folder)
    return folder


def test_reports_are_written(tmp_path, tfidf_model):
    report = evaluate_file(SAMPLE, tfidf_model, output_dir=tmp_path / "eval")
    assert report.evaluated == 360 and report.restricted_scores is None
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["scores"]["accuracy"] == report.scores["accuracy"]
    png = (tmp_path / "eval" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 2000
    wrong = pd.read_csv(tmp_path / "eval" / "misclassified.csv", encoding="utf-8-sig")
    assert list(wrong.columns) == ["row", "text", "gold", "predicted", "confidence"]
    assert (wrong["gold"] != wrong["predicted"]).all()
    assert wrong["confidence"].is_monotonic_decreasing
    assert len(wrong) == round((1 - report.scores["accuracy"]) * 360)


def test_two_class_data_on_a_three_class_model(tmp_path, tfidf_model, sample_table):
    binary = sample_table[sample_table["label"] != "neutral"]
    binary.to_csv(tmp_path / "binary.csv", index=False)
    report = evaluate_file(tmp_path / "binary.csv", tfidf_model, output_dir=tmp_path / "eval")
    assert report.data_labels == ["negative", "positive"]
    assert report.restricted_scores["labels"] == ["negative", "positive"]
    assert report.restricted_scores["accuracy"] >= report.scores["accuracy"]  # neutral can no longer be wrong
    assert report.scores["per_class"]["neutral"]["support"] == 0


@pytest.mark.slow
def test_quantized_evaluation_scores_close_to_fp32(tmp_path, tiny_model):
    fp32 = evaluate_file(SAMPLE, tiny_model, output_dir=tmp_path / "fp32")
    int8 = evaluate_file(SAMPLE, tiny_model, output_dir=tmp_path / "int8", scoring=ScoringOptions(precision="int8"))
    assert fp32.evaluated == int8.evaluated == 360
    assert abs(fp32.scores["accuracy"] - int8.scores["accuracy"]) <= 0.03


def test_ratings_are_binned_on_the_scale_the_model_learned(tmp_path, sample_table):
    """A 10-point model evaluated on a file whose ratings happen to be all <= 5 bins them 10-point (1-4
    negative, 5 neutral), not 5-point as the file alone would suggest."""
    ten_point = sample_table.assign(rating=(sample_table["rating"].astype(int) * 2).astype(str))
    ten_point.drop(columns=["label"]).to_csv(tmp_path / "train.csv", index=False)
    model = finetune(tmp_path / "train.csv", "tfidf", output_dir=tmp_path / "m").output_dir
    low = ten_point[ten_point["rating"].astype(int) <= 4].head(40).copy()
    low.loc[low.index[:5], "rating"] = "5"
    low.drop(columns=["label"]).to_csv(tmp_path / "low.csv", index=False)
    report = evaluate_file(tmp_path / "low.csv", model, output_dir=tmp_path / "eval")
    assert "10-point" in report.label_source and "the model's bins" in report.label_source
    assert report.data_labels == ["negative", "neutral"]  # 5 is neutral on 10 points (it would be positive on 5)
    # A model from before the bins were stored has only its scale: that is used.
    meta_path = model / "rs_meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    del meta["data"]["rating_bins"]
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    older = evaluate_file(tmp_path / "low.csv", model, output_dir=tmp_path / "older")
    assert "10-point" in older.label_source and "the model's scale" in older.label_source
    explicit = evaluate_file(
        tmp_path / "low.csv", model, output_dir=tmp_path / "e5", labels=LabelOptions(rating_scale=5)
    )
    assert "5-point" in explicit.label_source  # an explicit --rating-scale still wins


def test_a_file_that_states_another_scale_is_binned_on_it_in_the_models_classes(tmp_path, sample_table):
    """A binary 10-point model (1-4,,9-10) on ratings written 4/5: the file's own 5-point bins, without the
    neutral class the model lacks, and a warning that says so."""
    ten = {"negative": "2", "neutral": "6", "positive": "10"}
    train = pd.DataFrame({"review": sample_table["review"], "stars": sample_table["label"].map(ten)})
    train.to_csv(tmp_path / "train.csv", index=False)
    model = finetune(tmp_path / "train.csv", "tfidf", output_dir=tmp_path / "m", labels=_bins())
    five = {"negative": "1/5", "neutral": "3/5", "positive": "5/5"}
    test = pd.DataFrame({"review": sample_table["review"], "stars": sample_table["label"].map(five)})
    test.to_csv(tmp_path / "test.csv", index=False)
    report = evaluate_file(tmp_path / "test.csv", model.output_dir, output_dir=tmp_path / "e")
    assert "5-point: negative 1-2, positive 4-5, no neutral" in report.label_source
    assert report.data_labels == ["negative", "positive"] and report.skipped_outside_bins == {"3": 90}


def test_evaluating_on_the_training_file_is_warned_about(tmp_path):
    seen = []
    model = finetune(SAMPLE, "tfidf", output_dir=tmp_path / "m").output_dir
    report = evaluate_file(SAMPLE, model, output_dir=tmp_path / "e", on_start=seen.append)
    assert report.trained_on_this_file and "these scores are inflated" in seen[0].warnings[0]
    other = tmp_path / "copy.csv"
    other.write_bytes(SAMPLE.read_bytes())
    assert not evaluate_file(other, model, output_dir=tmp_path / "e2").trained_on_this_file


def _bins(spec: str = "1-4,,9-10", scale: int | None = None):

    return LabelOptions(rating_bins=spec, rating_scale=scale)


def test_a_model_on_its_own_unusual_scale_needs_no_options_again(tmp_path, sample_table):
    seven = {"negative": "2", "neutral": "4", "positive": "6"}
    table = pd.DataFrame({"review": sample_table["review"], "stars": sample_table["label"].map(seven)})
    table.to_csv(tmp_path / "seven.csv", index=False)
    options = _bins("1-2,3-5,6-7", scale=7)
    model = finetune(tmp_path / "seven.csv", "tfidf", output_dir=tmp_path / "m", labels=options)
    report = evaluate_file(tmp_path / "seven.csv", model.output_dir, output_dir=tmp_path / "e")
    assert "7-point" in report.label_source and report.data_labels == ["negative", "neutral", "positive"]
    hundred = table.assign(stars=sample_table["label"].map({"negative": "10", "neutral": "50", "positive": "95"}))
    hundred.to_csv(tmp_path / "hundred.csv", index=False)
    options = _bins("0-30,31-70,71-100", scale=100)
    model = finetune(tmp_path / "hundred.csv", "tfidf", output_dir=tmp_path / "m100", labels=options)
    report = evaluate_file(tmp_path / "hundred.csv", model.output_dir, output_dir=tmp_path / "e100")
    assert "100-point" in report.label_source and "the model's bins" in report.label_source
