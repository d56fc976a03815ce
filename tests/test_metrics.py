import numpy as np

from review_sentiment.metrics import classification_scores, restricted_argmax


def test_scores_match_hand_computed_values():
    gold = ["positive", "positive", "negative", "neutral", "negative", "positive"]
    predicted = ["positive", "negative", "negative", "positive", "negative", "positive"]
    scores = classification_scores(gold, predicted, ["negative", "neutral", "positive"])
    assert scores["accuracy"] == round(4 / 6, 4)
    # negative: P 2/3, R 1 → F1 0.8; neutral: 0; positive: P 2/3, R 2/3 → F1 2/3
    assert scores["per_class"]["negative"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert scores["per_class"]["neutral"]["f1"] == 0.0
    assert scores["per_class"]["positive"]["f1"] == round(2 / 3, 4)
    assert scores["macro_f1"] == round((0.8 + 0 + 2 / 3) / 3, 4)
    assert scores["confusion_matrix"] == [[2, 0, 0], [0, 0, 1], [1, 0, 2]]


def test_restricted_argmax_ignores_absent_classes():
    probabilities = np.array([[0.3, 0.5, 0.2], [0.1, 0.6, 0.3]])
    assert restricted_argmax(probabilities, ["negative", "neutral", "positive"], ["negative", "positive"]) == [
        "negative",
        "positive",
    ]
