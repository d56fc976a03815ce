import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from review_sentiment.errors import RsError
from review_sentiment.normalize import (
    RECIPE_VERSION,
    NormalizationRecipe,
    ReviewNormalizer,
    clean_text,
    collapse_repeats,
    has_hangul,
    normalize_texts,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ㅋㅋㅋㅋㅋㅋ 웃겨요", "ㅋㅋ 웃겨요"),
        ("최고!!!!!!", "최고!!"),
        ("ㅠㅠㅠㅠ 슬퍼", "ㅠㅠ 슬퍼"),
        ("10000원 1000000원", "10000원 1000000원"),  # digits are never collapsed
        ("ㅋㅎㅋㅎㅋㅎㅋㅎ", "ㅋㅎㅋㅎ"),
        ("😍😍😍😍 좋아요", "😍😍 좋아요"),  # emoji kept, only the run is cut
    ],
)
def test_clean_text_collapses_repeats_but_not_digits(raw, expected):
    assert clean_text(raw) == expected


def test_clean_text_recomposes_nfd_and_never_uses_nfkc():
    nfd = unicodedata.normalize("NFD", "배송 빨라요 ㅋㅋ")
    assert nfd != "배송 빨라요 ㅋㅋ"
    cleaned = clean_text(nfd)
    assert cleaned == "배송 빨라요 ㅋㅋ"
    assert "\u314b" in cleaned  # compatibility jamo ㅋ survives (NFKC would turn it into U+110F)


@pytest.mark.parametrize("value", [None, float("nan"), "", "   ", "\u200b\u200b"])
def test_missing_and_blank_cells_become_empty(value):
    assert clean_text(value) == ""


def test_lone_surrogates_control_and_zero_width_removed():
    assert clean_text("좋\ud800아요\u200b\x00 굿\ufeff") == "좋아요 굿"


def test_zero_width_joiner_inside_emoji_is_kept():
    family = "👨\u200d👩\u200d👧"
    assert clean_text(f"가족 {family}") == f"가족 {family}"


def test_html_entities_urls_and_emails():
    assert clean_text("&lt;3 최고&amp;짱 https://shop.example.com/a?b=1 문의 a.b@example.com") == "<3 최고&짱 문의"
    assert clean_text("&amp;lt;3") == "<3"  # doubly escaped


# QA's examples: version 1's URL and e-mail patterns (\S, \w) also removed the Korean text glued to them.
GLUED_URLS = [
    # (raw, version 2, version 1 — pinned: models trained with version 1 must keep getting exactly this)
    ("사이트 http://x.com,별로임", "사이트 ,별로임", "사이트"),
    ("https://coupang.com/abc좋아요 최고", "좋아요 최고", "최고"),
    ("링크(http://naver.me/x)참고하세요 별로", "링크( )참고하세요 별로", "링크( 별로"),
    ("https://img.co/1.jpg.정말 좋네요", ".정말 좋네요", "좋네요"),
    ("www.example.com에서", "에서", ""),
    ("abc@naver.com으로 문의", "으로 문의", "문의"),
    ('=HYPERLINK("http://x","클릭")', '=HYPERLINK(" ","클릭")', '=HYPERLINK("'),
    ("https://youtu.be/dQw4w9WgXcQ?t=42초부터", "초부터", ""),
    ("좋아요...abc@x.com", "좋아요..", ""),
]


@pytest.mark.parametrize(("raw", "v2", "v1"), GLUED_URLS)
def test_version_2_keeps_korean_glued_to_urls_and_version_1_is_unchanged(raw, v2, v1):
    assert clean_text(raw) == clean_text(raw, 2, 2) == v2
    assert clean_text(raw, version=1) == v1
    assert ReviewNormalizer(NormalizationRecipe(sentence_split=False, version=1)).normalize([raw]) == [v1]
    assert ReviewNormalizer(NormalizationRecipe(sentence_split=False)).normalize([raw]) == [v2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "좋아요 https://search.naver.com/search.naver?where=nexearch&query=%EB%A7%9B%EC%A7%91&sm=top 추천!",
            "좋아요 추천!",
        ),
        ("https://m.blog.naver.com/abc/123?x=1 참고", "참고"),
        ("후기(https://m.blog.naver.com/abc/123?x=1) 보고 샀어요", "후기( ) 보고 샀어요"),
        ("여기 https://ko.wikipedia.org/wiki/%EA%B9%80%EC%B9%98 봐요", "여기 봐요"),  # percent-encoded Korean path
        ("https://ko.wikipedia.org/wiki/김치 맛있다", "김치 맛있다"),  # a raw Korean path is not part of the URL
        ("https://x.com/a_b-c/d.html#sec-1?q=a+b&r=[1]&s=2 좋다", "좋다"),
        ("http://x.com/a?r=[1] 좋다", "] 좋다"),  # a URL never ends in ], a closing bracket
        ("HTTPS://EXAMPLE.COM/A 대문자", "대문자"),
        ("여기서 샀어요 https://smartstore.naver.com/shop/products/123.", "여기서 샀어요 ."),  # sentence end stays
        ("진짜 최고 www.naver.com!! 추천", "진짜 최고 !! 추천"),
        ("어때요 http://x.com/a? 별로", "어때요 ? 별로"),
        ("사이트 http://x.com/~user/page~ 좋아요~", "사이트 ~ 좋아요~"),
        ("[광고]http://x.com/ad]할인", "[광고] ]할인"),
        ('<a href="http://x.com/a">링크</a>', '<a href=" ">링크</a>'),
        ("'http://x.com'에서", "' '에서"),
        ("문의는 john_doe+x@gmail.co.kr로 해주세요.", "문의는 로 해주세요."),
        ("메일 abc@naver.com. 감사", "메일 . 감사"),
        ("한글abc@naver.com 끝", "한글 끝"),
        ("평점 10@3.5 점", "평점 10@3.5 점"),  # not an e-mail address: the last domain label has no letter
        ("http://x.K 끝", "끝"),  # NFC turns the Kelvin sign into K before step 4
        ("www.ㅋㅋ 웃기다", "ww.ㅋㅋ 웃기다"),  # not a URL (repeats cut www)
    ],
)
def test_version_2_urls_and_emails(raw, expected):
    assert clean_text(raw) == expected
    assert clean_text(expected) == expected


def test_version_1_recipe_roundtrips_and_normalizes_the_version_1_way():
    stored = {"sentence_split": True, "spacing": False, "typos": False, "max_repeat": 2}
    stored |= {"name": "rs-normalize", "version": 1}  # what a model trained before version 2 recorded
    recipe = NormalizationRecipe.from_dict(stored)
    assert recipe.version == 1 and recipe.to_dict() == stored
    assert NormalizationRecipe.from_dict(recipe.to_dict()) == recipe
    assert recipe.describe() == "rs-normalize v1 (nfc, cleanup, repeats<=2, sentences)"
    texts = [raw for raw, _, _ in GLUED_URLS]
    assert ReviewNormalizer(recipe).normalize(texts) == [v1 for _, _, v1 in GLUED_URLS]
    assert normalize_texts(texts, recipe) == normalize_texts(normalize_texts(texts, recipe), recipe)


def test_new_recipes_are_version_2():
    assert RECIPE_VERSION == 2
    assert NormalizationRecipe().version == 2
    assert NormalizationRecipe().to_dict()["version"] == 2
    assert NormalizationRecipe().describe() == "rs-normalize v2 (nfc, cleanup, repeats<=2, sentences)"


@pytest.mark.parametrize("version", [0, -1, "2", 2.0, True, None])
def test_recipe_versions_that_are_not_whole_numbers_from_1_are_refused(version):
    with pytest.raises(RsError, match="Unknown rs-normalize version"):
        NormalizationRecipe(version=version)


def test_clean_text_refuses_an_unknown_version():
    with pytest.raises(RsError, match="Unknown rs-normalize version 3"):
        clean_text("좋아요", version=3)


def test_has_hangul():
    assert has_hangul("좋아요") and has_hangul("ㅋㅋ")
    assert not has_hangul("good 👍 123")


def test_sentence_split_only_adds_spaces():
    text = "좋아요.배송도빨라요 ㅋㅋ 근데 포장이 별로였음!!다음엔 안 살듯"
    normalized = normalize_texts([text])[0]
    assert normalized.replace(" ", "") == text.replace(" ", "")
    assert "좋아요. 배송도빨라요" in normalized


def test_negation_words_survive():
    for text in ["나쁘지 않아요", "다시는 안 시켜요", "맛이 없어요", "이건 아니에요"]:
        normalized = normalize_texts([text])[0]
        for negation in ("않", "안", "없", "아니"):
            assert (negation in text) == (negation in normalized)


def test_one_output_per_input_in_order():
    texts = ["첫째", None, "", "셋째 ㅋㅋㅋㅋ", float("nan"), "다섯째"]
    assert normalize_texts(texts) == ["첫째", "", "", "셋째 ㅋㅋ", "", "다섯째"]


def test_spacing_option_rewrites_spacing():
    recipe = NormalizationRecipe(spacing=True, sentence_split=False)
    assert ReviewNormalizer(recipe).normalize(["배송이빨라서좋아요"]) == ["배송이 빨라서 좋아요"]


def test_typo_option_fixes_a_common_typo():
    recipe = NormalizationRecipe(typos=True, sentence_split=False)
    assert ReviewNormalizer(recipe).normalize(["맛잇어요"]) == ["맛있어요"]


def test_recipe_roundtrip_and_validation():
    recipe = NormalizationRecipe(spacing=True)
    assert NormalizationRecipe.from_dict(recipe.to_dict()) == recipe
    for version in (RECIPE_VERSION + 1, 3, 99):
        with pytest.raises(RsError, match="newer"):
            NormalizationRecipe.from_dict({**recipe.to_dict(), "version": version})
    with pytest.raises(RsError, match="Unknown normalization settings"):
        NormalizationRecipe.from_dict({**recipe.to_dict(), "lowercase": True})


review_piece = st.one_of(
    st.characters(min_codepoint=0xAC00, max_codepoint=0xAC40),  # Hangul syllables
    st.characters(min_codepoint=0x3131, max_codepoint=0x3163),  # compatibility jamo (ㅋ, ㅠ)
    st.sampled_from(list(" .!?~,ㅋㅎㅠ😍👍\u200b\u200d\n\t&;#<>0123456789abc")),
    st.sampled_from(["&amp;", "&lt;", "&#8203;", "http://x.y/", "\ud800", "ㅋㅋㅋㅋ", "10000원"]),
    # URL and e-mail pieces, so the two versions' step 4 meets glued Hangul, brackets and trailing punctuation
    st.sampled_from(["https://", "www.", "a.kr/", "?q=1&r=%EB", "#x", "(", ")", "[", "]", '"', "'", "~", ":", ";"]),
    st.sampled_from(["abc@naver.com", "@", "a@b.", ".com", "x_y+z@", "%", "\u212a", "wwww.", "htttp://"]),
    st.characters(codec="utf-8"),
)
korean_text = st.lists(review_piece, max_size=40).map("".join)


@pytest.mark.parametrize("version", [1, 2])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(korean_text)
def test_clean_text_is_idempotent(version, text):
    once = clean_text(text, version=version)
    assert clean_text(once, version=version) == once


@pytest.mark.parametrize("version", [1, 2])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(korean_text, max_size=5))
def test_default_normalization_is_idempotent(version, texts):
    recipe = NormalizationRecipe(version=version)
    once = normalize_texts(texts, recipe)
    assert normalize_texts(once, recipe) == once


def test_collapse_repeats_respects_max_repeat():
    assert collapse_repeats("ㅋㅋㅋㅋㅋ", 3) == "ㅋㅋㅋ"


def test_sentence_split_never_cuts_a_word():
    # kiwipiepy puts a boundary inside 재미지다; a space there would change how the model tokenizes it.
    assert normalize_texts(["재미지다 여주 존나 이쁨"]) == ["재미지다 여주 존나 이쁨"]


def test_sentence_split_is_stable_after_inserting_spaces():
    # The first split changes how kiwipiepy splits the text again; the recipe repeats until stable.
    once = normalize_texts(["그냥 한번 보는거지뭐..두번은 못보겠다.."])
    assert normalize_texts(once) == once


def test_overlapping_kiwi_sentences_do_not_duplicate_text():
    # kiwipiepy returns overlapping sentence offsets for this review ("봐야됀" and "됀다.").
    text = "진짜 쓰레기 보면 손해다. 돈받고 봐야됀다."
    assert normalize_texts([text]) == [text]


def test_texts_that_cannot_gain_a_space_skip_kiwipiepy_with_identical_output(monkeypatch, sample_table):
    import re

    import review_sentiment.normalize as normalize

    texts = sample_table["review"].tolist() + [
        "좋아요.배송도 빨라요",
        "최고ㅋㅋ진짜",
        "별로_다신",
        "굿👍또 살게요",
        "재미지다",
        "좋아요 ",
        "a.b",
        "10.5점",
    ]
    filtered = normalize.ReviewNormalizer().normalize(texts)
    monkeypatch.setattr(normalize, "_SPLIT_CANDIDATE", re.compile(""))  # every text goes through kiwipiepy
    assert normalize.ReviewNormalizer().normalize(texts) == filtered
    assert filtered[-8] == "좋아요. 배송도 빨라요"  # a candidate that kiwipiepy does split


def test_long_texts_are_split_in_blocks_without_losing_or_cutting_words(sample_table):
    from review_sentiment.normalize import SENTENCE_BLOCK_CHARS, _blocks, split_sentences

    text = "".join(review.rstrip(".") + "." for review in sample_table["review"]) * 4  # no space after the dots
    assert len(text) > 4 * SENTENCE_BLOCK_CHARS
    normalized = normalize_texts([text])[0]
    assert normalized.replace(" ", "") == clean_text(text).replace(" ", "")  # only spaces were added
    assert normalize_texts([normalized]) == [normalized]  # still idempotent
    assert "".join(_blocks(normalized, SENTENCE_BLOCK_CHARS)) == normalized
    sentences = split_sentences([normalized, ""])
    assert " ".join(sentences[0]) == normalized and sentences[1] == []
    assert len(sentences[0]) > 100


def test_progress_is_reported_per_batch_and_changes_nothing(monkeypatch):
    import review_sentiment.normalize as normalize

    texts = ["배송 빨라요!!좋아요ㅋㅋㅋㅋ", "별로예요.다시는 안 사요", "", "그냥 그래요"] * 3
    normalizer = ReviewNormalizer()
    expected = normalizer.normalize(texts)
    monkeypatch.setattr(normalize, "_CHUNK_SIZE", 5)
    progress = []
    assert normalizer.normalize(texts, on_progress=progress.append) == expected
    assert progress == [5, 5, 2]
    normalizer.load()  # builds kiwipiepy once; harmless to repeat
