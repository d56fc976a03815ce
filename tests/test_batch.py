import numpy as np
import pandas as pd
import pytest

from review_sentiment.batch import BatchLabeler, LabelingPlan, added_column_names
from review_sentiment.errors import RsError
from tests.conftest import as_text_cells, labeled_by_rs_predict


def test_a_batch_labeler_gives_what_rs_predict_writes(tmp_path, tiny_model, two_thousand_reviews):
    expected = labeled_by_rs_predict(two_thousand_reviews, tiny_model, tmp_path / "out.csv")
    reviews = pd.read_csv(two_thousand_reviews, dtype=str, keep_default_na=False)
    labeler = BatchLabeler(tiny_model, list(reviews.columns), sample=reviews)
    labeled = pd.concat([labeler.label(reviews.iloc[i : i + 700]) for i in range(0, len(reviews), 700)])
    assert list(labeled.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(as_text_cells(labeled), expected)
    assert (labeled["note"] == "empty text").sum() == 6 and labeled["predicted_label"].eq("").sum() == 6


def test_added_columns_never_overwrite_an_input_column():
    names = added_column_names(["review", "note", "confidence"], ["negative", "positive"])
    assert names == {
        "predicted_label": "predicted_label",
        "confidence": "confidence_rs",
        "prob_negative": "prob_negative",
        "prob_positive": "prob_positive",
        "note": "note_rs",
    }


def test_a_plan_refuses_bad_input_before_any_model_is_loaded(tmp_path, tiny_model):
    reviews = pd.DataFrame({"id": ["1"], "review": ["좋아요"]})
    with pytest.raises(RsError, match="nothing to label"):
        LabelingPlan(tiny_model, reviews.columns, reviews.iloc[:0])
    with pytest.raises(RsError, match="not a column"):
        LabelingPlan(tiny_model, reviews.columns, reviews, text_col="text")
    with pytest.raises(RsError, match="no model in it"):
        LabelingPlan(tmp_path, reviews.columns, reviews)
    assert LabelingPlan(tiny_model, reviews.columns, reviews).text_column == "review"


def test_a_plan_for_a_checkpoint_rs_did_not_train(tiny_model, checkpoints, two_thousand_reviews, tmp_path):
    from review_sentiment.options import ScoringOptions

    reviews = pd.read_csv(two_thousand_reviews, dtype=str, keep_default_na=False)
    with pytest.raises(RsError, match="--labels negative,neutral,positive"):
        LabelingPlan(checkpoints["numbered"], reviews.columns, reviews)
    scoring = ScoringOptions(labels=("negative", "neutral", "positive"))
    plan = LabelingPlan(checkpoints["numbered"], reviews.columns, reviews, scoring=scoring)
    assert plan.labels == ["negative", "neutral", "positive"] and plan.text_column == "review"
    labeler = BatchLabeler(plan.model_dir, plan.columns, text_col=plan.text_column, scoring=scoring)
    expected = labeled_by_rs_predict(two_thousand_reviews, tiny_model, tmp_path / "out.csv")
    labeled = labeler.label(reviews)
    assert labeler.added_columns == list(plan.names.values())
    assert list(labeled.columns) == list(expected.columns)
    assert as_text_cells(labeled)["predicted_label"].equals(expected["predicted_label"])


def test_rows_below_the_minimum_confidence_are_set_aside_with_the_reason():
    from review_sentiment.batch import UNCERTAIN, set_aside_uncertain

    probabilities = np.array(
        [[0.9, 0.1], [0.55, 0.45], [np.nan, np.nan], [0.300004, 0.699996], [0.3, 0.7], [0.35, 0.65]]
    )
    predicted = ["negative", "negative", "", "positive", "positive", "positive"]
    notes = ["", "", "empty text", "", "", "long text: scored in 3 parts"]
    labels, reasons = set_aside_uncertain(predicted, probabilities, notes, 0.7)
    # 0.699996 is shown as 0.7000 in the confidence column, so it is not below 0.7
    assert labels == ["negative", UNCERTAIN, "", "positive", "positive", UNCERTAIN]
    assert reasons[:5] == [
        "",
        "uncertain: confidence 0.5500 is below --min-confidence 0.7 (the model leans negative)",
        "empty text",
        "",
        "",
    ]
    assert reasons[5] == (
        "long text: scored in 3 parts; uncertain: confidence 0.6500 is below --min-confidence 0.7 (the model leans "
        "positive)"
    )
    assert predicted[1] == "negative" and notes[1] == ""  # the inputs are not changed
