"""review_terms with the real kiwipiepy (negation kept), and the Fightin' Words log-odds ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from review_sentiment.keywords import TermScore, distinctive_terms, frequent_nouns, review_terms


@pytest.mark.parametrize(
    ("review", "present", "absent"),
    [
        ("배송이 안 빨라요", "안 빠르다", "빠르다"),
        ("좋지 않아요", "안 좋다", "좋다"),
        ("좋지는 않네요", "안 좋다", "좋다"),
        ("먹지 못했다", "못 먹다", "먹다"),
        ("연기 못하네", "못 하다", "하다"),
        ("사지 마세요", "안 사다", "사다"),
        ("추천하지 않습니다", "안 추천하다", "추천하다"),
        ("안 추천해요", "안 추천하다", "추천하다"),
        ("지루하지 않았다", "안 지루하다", "지루하다"),
        ("불친절해요", "불친절하다", "친절하다"),
    ],
)
def test_negation_survives(review, present, absent):
    [terms] = review_terms([review])
    assert present in terms
    assert absent not in terms


def test_no_negation_word_is_dropped():
    good, bad, bad_spaced, not_it = review_terms(["맛있어요", "맛없어요", "맛이 없어요", "이건 영화가 아니다"])
    assert good == ["맛있다"]
    assert bad == ["맛없다"]
    assert bad_spaced == ["맛", "없다"]
    assert "아니다" in not_it


def test_nouns_and_lemmas():
    tidy, cute, short, slang = review_terms(
        ["배송이 빠르고 포장도 깔끔해요", "귀여워요 색도 예쁘고", "양은 많은데 영화속 그때", "핵노잼 꿀잼"]
    )
    assert tidy == ["배송", "빠르다", "포장", "깔끔하다"]
    assert cute == ["귀엽다", "색", "예쁘다"]  # irregular 귀여워 → 귀엽다; 색 is an allowed one-character noun
    assert "양" in short and "많다" in short and "속" not in short and "때" not in short
    assert slang == ["핵노잼", "꿀잼"]  # one-character pieces glued, not 노 + 잼


def test_empty_and_non_text_inputs():
    assert review_terms([]) == []
    assert review_terms(["", None, float("nan"), 3, "   ", "ㅋㅋㅋ", "좋아요"]) == [[], [], [], [], [], [], ["좋다"]]


def test_repeated_reviews_get_their_own_lists():
    first, second = review_terms(["최고예요", "최고예요"])
    assert first == second == ["최고"]
    first.append("x")
    assert second == ["최고"]


# Two classes of 40 reviews: 영화 in all of them, 최고 in 30 positive and 2 negative, 지루하다 in 20 negative.
POSITIVE = [["영화", "최고"]] * 30 + [["영화", "보다"]] * 10
NEGATIVE = [["영화", "지루하다"]] * 20 + [["영화", "최고"]] * 2 + [["영화", "보다"]] * 18
TERMS = POSITIVE + NEGATIVE
LABELS = ["positive"] * 40 + ["negative"] * 40


def test_class_specific_terms_rank_first_not_common_ones():
    result = distinctive_terms(TERMS, LABELS, top=5, min_count=1)
    assert list(result) == ["negative", "positive"]
    assert result["positive"][0].term == "최고"
    assert result["negative"][0].term == "지루하다"
    assert all(score.term != "영화" for scores in result.values() for score in scores)  # z = 0 in both


def test_z_matches_a_hand_computation():
    alpha_0 = 1000.0
    [best] = distinctive_terms(TERMS, LABELS, top=1, min_count=1, alpha_0=alpha_0)["positive"]
    # counts once per review: y_i = 30 of n_i = 80 term-review pairs, y_j = 2 of n_j = 80; prior from all 160
    y_i, y_j, n_i, n_j, n = 30.0, 2.0, 80.0, 80.0, 160.0
    a_w = alpha_0 * (y_i + y_j) / n
    delta = np.log((y_i + a_w) / (n_i + alpha_0 - y_i - a_w)) - np.log((y_j + a_w) / (n_j + alpha_0 - y_j - a_w))
    z = delta / np.sqrt(1 / (y_i + a_w) + 1 / (y_j + a_w))
    assert best == TermScore(term="최고", z=pytest.approx(float(z)), count=30, share=0.75, other_share=0.05)


def test_min_count_unlabeled_rows_and_single_class():
    assert "최고" not in [s.term for s in distinctive_terms(TERMS, LABELS, min_count=3)["negative"]]
    with_unlabeled = distinctive_terms(
        TERMS + [["최고"]] * 50, LABELS + ["", None, float("nan"), "  ", ""] * 10, min_count=1
    )
    assert with_unlabeled == distinctive_terms(TERMS, LABELS, min_count=1)  # unlabeled rows change nothing
    assert distinctive_terms(POSITIVE, ["positive"] * 40, min_count=1) == {"positive": []}
    assert distinctive_terms([], []) == {}
    with pytest.raises(ValueError):
        distinctive_terms(TERMS, LABELS[:-1])


def test_frequent_nouns_leave_out_predicates_and_stopwords():
    terms = [["배송", "배송", "빠르다", "것"], ["배송", "안 좋다", "가격"], ["가격", "포장", "정말"]]
    assert frequent_nouns(terms, top=5, min_count=1) == [("가격", 2), ("배송", 2), ("포장", 1)]
    assert frequent_nouns(terms, top=1, min_count=1) == [("가격", 2)]
    assert frequent_nouns(terms, min_count=3) == []


@pytest.fixture(scope="module")
def sample_terms(sample_table):
    return review_terms(sample_table["review"].tolist())


def test_sample_negative_terms(sample_table, sample_terms):
    result = distinctive_terms(sample_terms, sample_table["label"].tolist(), top=10, min_count=3)
    assert set(result) == {"negative", "neutral", "positive"}
    negative = [score.term for score in result["negative"]]
    assert any(term.startswith(("안 ", "못 ")) for term in negative)  # e.g. 안 되다, 못 쓰다
    [(most_frequent, _)] = frequent_nouns(sample_terms, top=1)
    assert most_frequent not in negative
    assert "좋다" in [score.term for score in result["positive"]]
    sizes = sample_table["label"].value_counts()
    for label, scores in result.items():
        assert [s.z for s in scores] == sorted((s.z for s in scores), reverse=True)
        assert all(s.z > 0 and s.count >= 3 and math.isclose(s.share, s.count / sizes[label]) for s in scores)


def test_one_pass_gives_terms_and_sentences_and_counts_every_row():
    from review_sentiment.keywords import analyze_reviews

    counted = []
    texts = ["배송이 빨라요. 맛은 별로예요", "", "배송이 빨라요. 맛은 별로예요", None, "좋아요"]
    analyzed = analyze_reviews(texts, on_rows=counted.append)
    assert sum(counted) == len(texts)
    assert analyzed.sentences[0] == ["배송이 빨라요.", "맛은 별로예요"] and analyzed.sentences[1] == []
    assert analyzed.terms[0] == analyzed.terms[2] and "배송" in analyzed.terms[0] and analyzed.terms[3] == []
