import json

import numpy as np
import pytest

from review_sentiment.baseline import WEIGHTS_FILE, TfidfClassifier
from review_sentiment.config import FinetuneArguments
from review_sentiment.errors import RsError
from review_sentiment.finetune import finetune
from review_sentiment.normalize import normalize_texts
from review_sentiment.scoring import Predictor
from tests.conftest import SAMPLE

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def fitted(sample_table):
    texts = normalize_texts(sample_table["review"].tolist())
    return TfidfClassifier.fit(texts, sample_table["label"].tolist(), LABELS), texts


def test_probabilities_match_scikit_learn(fitted, sample_table):
    from sklearn.linear_model import LogisticRegression

    classifier, texts = fitted
    reference = LogisticRegression(C=classifier.settings.regularization, class_weight="balanced", max_iter=2000)
    reference.fit(classifier.features(texts), [LABELS.index(label) for label in sample_table["label"]])
    assert np.allclose(classifier.predict_proba(texts), reference.predict_proba(classifier.features(texts)), atol=1e-4)


def test_saved_and_reloaded_gives_identical_predictions(tmp_path, fitted):
    classifier, texts = fitted
    classifier.save(tmp_path)
    reloaded = TfidfClassifier.load(tmp_path, LABELS, None)
    assert np.array_equal(classifier.predict_proba(texts), reloaded.predict_proba(texts))


def test_binary_model(sample_table):
    keep = sample_table["label"] != "neutral"
    texts = normalize_texts(sample_table.loc[keep, "review"].tolist())
    classifier = TfidfClassifier.fit(texts, sample_table.loc[keep, "label"].tolist(), ["negative", "positive"])
    probabilities = classifier.predict_proba(texts)
    assert probabilities.shape == (len(texts), 2) and np.allclose(probabilities.sum(axis=1), 1)


def test_finetune_tfidf_makes_a_model_folder_predict_can_use(tmp_path):
    result = finetune(SAMPLE, "tfidf", FinetuneArguments(), output_dir=tmp_path / "tf")
    meta = json.loads((tmp_path / "tf" / "rs_meta.json").read_text())
    assert meta["model_type"] == "tfidf" and meta["labels"] == LABELS
    assert meta["weights_sha256"].startswith("sha256:")
    assert not list((tmp_path / "tf").glob("*.pkl")) and not list((tmp_path / "tf").glob("*.bin"))
    assert 0 <= result.metrics["macro_f1"] <= 1
    predicted = Predictor(tmp_path / "tf").predict(["배송 빠르고 정말 좋아요", "", "최악이에요 환불해주세요"])
    assert predicted[1] == "" and set(predicted) <= {"", *LABELS}


def test_altered_or_mismatched_folders_are_refused(tmp_path):
    finetune(SAMPLE, "tfidf", FinetuneArguments(), output_dir=tmp_path / "tf")
    weights = tmp_path / "tf" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(RsError, match="digest"):
        Predictor(tmp_path / "tf")
    with pytest.raises(RsError, match="labels"):
        TfidfClassifier.load(tmp_path / "tf", ["negative", "positive"], None)
    weights.unlink()
    with pytest.raises(RsError, match="missing"):
        Predictor(tmp_path / "tf")


def test_scoring_in_batches_reports_progress_and_changes_nothing(fitted, monkeypatch):
    import review_sentiment.baseline as baseline

    classifier, texts = fitted
    whole = classifier.predict_proba(texts)
    monkeypatch.setattr(baseline, "PREDICT_BATCH", 100)
    progress = []
    assert np.array_equal(classifier.predict_proba(texts, on_batch=progress.append), whole)
    assert progress == [100, 100, 100, 60]
    assert classifier.predict_proba([]).shape == (0, 3)
