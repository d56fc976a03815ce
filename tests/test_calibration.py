import json
import shutil

import numpy as np
import pandas as pd
import pytest

from review_sentiment.calibration import (
    Temperature,
    calibration_record,
    calibration_scores,
    coverage_curve,
    coverage_table,
    fit_temperature,
    reliability_bins,
)
from review_sentiment.options import ScoringOptions
from review_sentiment.scoring import Predictor
from tests.conftest import SAMPLE


def softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def over_confident(rows: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities from logits whose gold classes were drawn from softmax(logits / temperature): a model that
    is over-confident by exactly that temperature."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, 3)) * 3
    truth = softmax(logits / temperature)
    gold = np.array([rng.choice(3, p=row) for row in truth])
    return softmax(logits), gold


def test_the_fitted_temperature_is_the_one_that_made_the_data():
    probabilities, gold = over_confident(20_000, 2.5)
    assert fit_temperature(probabilities, gold).value == pytest.approx(2.5, abs=0.1)
    probabilities, gold = over_confident(20_000, 0.6, seed=1)  # under-confident: T < 1 sharpens
    assert fit_temperature(probabilities, gold).value == pytest.approx(0.6, abs=0.05)


def test_the_temperature_divides_the_logits_and_keeps_every_label():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 3)) * 4
    probabilities = softmax(logits).astype(np.float32)
    calibrated = Temperature(1.7).apply(probabilities)
    assert calibrated.dtype == np.float32
    np.testing.assert_allclose(calibrated, softmax(logits / 1.7), atol=1e-6)
    assert (calibrated.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert Temperature(1.0).apply(probabilities) is probabilities
    with_gaps = probabilities.copy()
    with_gaps[4] = np.nan  # a review without text
    applied = Temperature(1.7).apply(with_gaps)
    assert np.isnan(applied[4]).all() and not np.isnan(np.delete(applied, 4, axis=0)).any()


def test_ece_uses_equal_mass_bins():
    # 30 rows: 15 bins of two. Confidence 0.9 for the top 20 rows, of which 16 right; 0.6 for 10, 5 right.
    probabilities = np.array([[0.9, 0.1]] * 20 + [[0.6, 0.4]] * 10)
    gold = np.array([0] * 16 + [1] * 4 + [0] * 5 + [1] * 5)
    bins = reliability_bins(probabilities, gold)
    assert len(bins) == 15 and {b["rows"] for b in bins} == {2}
    scores = calibration_scores(probabilities, gold)
    # Sorted by confidence (stable), the bins pair rows 20-29 then 0-19. The five 0.6 bins are right 2, 2, 1, 0, 0
    # times of 2: |1 - 0.6| x2, |0.5 - 0.6|, |0 - 0.6| x2 = 2.1; the ten 0.9 bins: 8 x |1 - 0.9| + 2 x |0 - 0.9|
    # = 2.6. Each bin weighs 2/30: ECE = 2 x 4.7 / 30.
    assert scores["ece"] == pytest.approx(2 * 4.7 / 30, abs=1e-4)
    one_hot = np.eye(2)[gold]
    assert scores["brier"] == pytest.approx(((probabilities - one_hot) ** 2).sum(axis=1).mean(), abs=1e-4)
    assert scores["nll"] == pytest.approx(-np.log(probabilities[np.arange(30), gold]).mean(), abs=1e-4)


def test_a_calibrated_model_has_a_small_ece_and_an_over_confident_one_a_large_one():
    probabilities, gold = over_confident(20_000, 1.0)
    assert calibration_scores(probabilities, gold)["ece"] < 0.02
    probabilities, gold = over_confident(20_000, 2.5)
    assert calibration_scores(probabilities, gold)["ece"] > 0.1
    record = calibration_record(probabilities, gold)
    assert record["validation_calibrated"]["ece"] < 0.02 < 0.1 < record["validation_raw"]["ece"]
    assert record["validation_calibrated"]["nll"] < record["validation_raw"]["nll"]


def test_coverage_keeps_the_most_confident_reviews():
    probabilities = np.array([[0.95, 0.05], [0.85, 0.15], [0.3, 0.7], [0.45, 0.55], [0.5, 0.5]])
    gold = np.array([0, 1, 1, 0, 0])
    table = {row["min_confidence"]: row for row in coverage_table(probabilities, gold, (0.5, 0.6, 0.9, 0.99))}
    assert 0.5 not in table  # two classes: every review is at least 0.5 confident
    assert table[0.6] == {"min_confidence": 0.6, "kept": 3, "coverage": 0.6, "accuracy": 0.6667}
    assert table[0.9]["kept"] == 1 and table[0.9]["accuracy"] == 1.0
    assert table[0.99] == {"min_confidence": 0.99, "kept": 0, "coverage": 0.0, "accuracy": None}
    coverage, accuracy, thresholds = coverage_curve(probabilities, gold)
    assert list(coverage) == [0.2, 0.4, 0.6, 0.8, 1.0] and list(thresholds) == [0.95, 0.85, 0.7, 0.55, 0.5]
    assert accuracy[-1] == pytest.approx(0.6)


@pytest.fixture(scope="module")
def tfidf_model(tmp_path_factory):
    from review_sentiment.finetune import finetune

    return finetune(SAMPLE, "tfidf", output_dir=tmp_path_factory.mktemp("calibration") / "tfidf").output_dir


@pytest.fixture(scope="module")
def sample_texts(sample_table):
    return sample_table["review"].tolist()


@pytest.mark.parametrize("model", ["tiny_model", "tfidf_model"])
def test_a_trained_model_carries_its_temperature_and_predict_applies_it(request, model, sample_texts):
    folder = request.getfixturevalue(model)
    meta = json.loads((folder / "rs_meta.json").read_text())
    temperature = meta["calibration"]["temperature"]
    assert 0.02 <= temperature <= 50 and temperature != 1.0
    assert meta["calibration"]["fitted_on_rows"] == meta["data"]["rows_validation"]
    calibrated = Predictor(folder).probabilities(sample_texts)
    raw = Predictor.from_options(folder, ScoringOptions(calibration=False)).probabilities(sample_texts)
    np.testing.assert_allclose(calibrated, Temperature(temperature).apply(raw), atol=1e-6)
    assert not np.allclose(calibrated, raw, atol=1e-3)
    assert (calibrated.argmax(axis=1) == raw.argmax(axis=1)).all()


def test_a_model_trained_before_calibration_keeps_its_raw_scores(tmp_path, tiny_model, sample_texts):
    old = shutil.copytree(tiny_model, tmp_path / "old")
    meta = json.loads((old / "rs_meta.json").read_text())
    del meta["calibration"]
    (old / "rs_meta.json").write_text(json.dumps(meta))
    predictor = Predictor(old)
    assert predictor.temperature is None and "no temperature" in predictor.calibration_note
    raw = Predictor.from_options(tiny_model, ScoringOptions(calibration=False)).probabilities(sample_texts)
    np.testing.assert_array_equal(predictor.probabilities(sample_texts), raw)


def test_the_transformer_temperature_is_fitted_on_the_best_epochs_validation_probabilities(tiny_model):
    """The validation split is the one finetune holds out (same seed): refit on it from the saved model."""
    from review_sentiment.finetune import stratified_split
    from review_sentiment.labels import read_gold_labels

    meta = json.loads((tiny_model / "rs_meta.json").read_text())
    table = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    gold = read_gold_labels(table).labels
    rows = [i for i, label in enumerate(gold) if label]
    _, validation = stratified_split([gold[i] for i in rows], 0.1, 42)
    texts = [table["review"][rows[i]] for i in validation]
    raw = Predictor.from_options(tiny_model, ScoringOptions(calibration=False)).probabilities(texts)
    gold_classes = [meta["labels"].index(gold[rows[i]]) for i in validation]
    # finetune truncates at max_length where predict splits long reviews: the sample's reviews are short
    assert fit_temperature(raw, gold_classes).value == pytest.approx(meta["calibration"]["temperature"], rel=1e-3)
