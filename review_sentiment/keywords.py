"""What customers talk about, per sentiment class: the distinctive words of each class (for `rs report`).

`review_terms` turns reviews into terms with kiwipiepy: nouns, and verb/adjective lemmas ending in 다 (좋다,
빠르다, 맛있다, 불친절하다). Negation is kept in the term, because it flips the sentiment: "안 빨라요" gives
`안 빠르다`, "좋지 않아요" `안 좋다`, "먹지 못했다" `못 먹다`; 없다, 아니다 and lexicalized 맛없다 / 재미없다 stay
terms of their own. Stopwords are never removed (kiwipiepy's list would drop 않, 없, 아니).

`distinctive_terms` ranks, for each class against all the others, the terms by the weighted log-odds ratio
with an informative Dirichlet prior: Monroe, Colaresi & Quinn (2008), "Fightin' Words: Lexical Feature
Selection and Evaluation for Identifying the Content of Political Conflict", Political Analysis 16(4),
section 3.5. Unlike raw frequency, it does not put words every class uses (영화, 배송) at the top, and unlike
a plain odds ratio it does not put words seen twice at the top either. `frequent_nouns` lists the nouns the
most reviews mention, to choose aspects from. `TermCounts` collects the counts both need, a chunk at a time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Single-character nouns are mostly fragments (때, 속, 전, 중) or misanalyses; these few carry an aspect or a
# judgment in reviews (맛, 양, 값, 돈 아깝다, 잠 온다, 굿, 짱, 잼) and are kept.
SINGLE_CHAR_NOUNS = frozenset("맛양값빛색옷향폰앱차돈잠굿짱씬잼질빵밥책곡")

# Not aspects: function-like nouns, intensifiers kiwipiepy tags as nouns, and the judgment words below.
# Chosen from the most frequent nouns of NSMC and data/sample_reviews.csv.
NOUN_STOPWORDS = frozenset(
    "것 거 수 때 점 정도 진짜 정말 완전 그냥 생각 이번 사람 이거 그거 저거 뭐 중 번 개 등 듯 분 말 더 좀 이것"
    " 자체 느낌 하나 처음 마지막 다음 이상 이하 부분 최고 최악 별로 강추 대박 명작 걸작 평점 만점 기대 필요 기억"
    " 당시 지금 요즘 옛날 예전 시절 오늘 어제 나중 하루 이후 보통 중간".split()
)

# Adverbs and interjections that are a whole verdict in reviews ("별로임", "별로예요", "강추!"): kiwipiepy
# tags them MAG / IC, which are otherwise left out.
JUDGMENT_WORDS = frozenset({"별로", "강추", "대박"})

_NOUN_TAGS = frozenset({"NNG", "NNP"})
_PREDICATE_TAGS = frozenset({"VV", "VA", "VV-I", "VA-I", "VV-R", "VA-R"})
_DERIVING_SUFFIXES = frozenset({"XSV", "XSA", "XSA-I", "XSA-R", "XSV-I", "XSV-R"})  # 추천+하, 지루+하, 실망+하
# Auxiliaries after -지 that negate the predicate before them, and the prefix the term gets.
_NEGATING_AUXILIARIES = {"않": "안 ", "못하": "못 ", "말": "안 "}  # 말다: "사지 마세요" is "don't buy"
_NEGATING_ADVERBS = {"안": "안 ", "못": "못 "}
_NEGATION_PREFIXES = tuple(_NEGATING_ADVERBS.values())
_CHUNK = 4096  # reviews per kiwipiepy call: enough work for its worker threads, bounded memory


@dataclass(frozen=True)
class TermScore:
    """A term distinctive of one class: z from the log-odds ratio, and the share of reviews that use it."""

    term: str
    z: float
    count: int  # reviews of this class with the term
    share: float  # count / reviews of this class
    other_share: float  # the same share among the other classes' reviews


@dataclass
class AnalyzedReviews:
    """Reviews after one pass of kiwipiepy: cleaned, their terms and their sentences."""

    texts: list[str]  # cleaned (`clean_text`: recipe steps 1-6); '' for empty and non-string entries
    terms: list[list[str]]  # in order (a term may repeat): nouns, predicate lemmas, negated predicates
    sentences: list[list[str]]  # kiwipiepy's sentence split, as the model splits long reviews


def analyze_reviews(texts: Sequence[object], on_rows: Callable[[int], None] | None = None) -> AnalyzedReviews:
    """Clean the reviews and read each distinct one with kiwipiepy once, in batches that use Kiwi's worker
    threads: its terms and its sentences come from the same analysis. `on_rows(n)` counts the reviews done."""
    from review_sentiment.normalize import clean_text, shared_kiwi

    cleaned = [clean_text(text) if isinstance(text, str) else "" for text in texts]
    # Short reviews repeat a lot ("최고", "굿", "별로"); each distinct text goes to kiwipiepy once.
    rows_of = Counter(text for text in cleaned if text)
    unique = list(rows_of)
    if on_rows:
        on_rows(len(cleaned) - sum(rows_of.values()))  # the empty ones
    read: dict[str, tuple[list[str], list[str]]] = {}
    if unique:
        kiwi = shared_kiwi()
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            for text, sentences in zip(chunk, kiwi.tokenize(chunk, split_sents=True), strict=True):
                tokens = [token for sentence in sentences for token in sentence]
                spans = [text[sentence[0].start : sentence[-1].end] for sentence in sentences if sentence]
                read[text] = (_terms_from_tokens(tokens), spans)
            if on_rows:
                on_rows(sum(rows_of[text] for text in chunk))
    return AnalyzedReviews(
        cleaned,
        [list(read[text][0]) if text else [] for text in cleaned],
        [list(read[text][1]) if text else [] for text in cleaned],
    )


def review_terms(texts: Sequence[object]) -> list[list[str]]:
    """Each review's terms, in order (a term may repeat): nouns, predicate lemmas, negated predicates.
    Empty and non-string entries give []."""
    return analyze_reviews(texts).terms


def _terms_from_tokens(tokens) -> list[str]:
    # One attribute read per token. A verb's or adjective's lemma is its form + 다: kiwipiepy's forms are
    # dictionary stems, irregular ones too (귀엽/VA-I → 귀엽다), and Token.lemma equals it on 20,000 NSMC reviews.
    tokens = [(t.form, t.tag, t.start, t.end) for t in tokens]
    n = len(tokens)
    terms: list[str] = []
    i = 0
    while i < n:
        form, tag, _, end = tokens[i]
        first = i
        if tag == "XPN" and i + 1 < n and tokens[i + 1][2] == end and tokens[i + 1][1] in ("NNG", "NNP", "XR"):
            i += 1  # 불+친절, 무+관심: the prefix belongs to the word (불친절하다 is not 친절하다)
            prefix = form
            form, tag, _, end = tokens[i]
            form = prefix + form
        if tag in _NOUN_TAGS:
            # A single-character noun glued to the next noun is slang or a compound: 노+잼, 꿀+잼, 핵+노+잼. After a
            # noun it is left out instead (영화+속, 어릴+때): there it is mostly a position or a time.
            piece = form
            while len(piece) == 1 and piece not in SINGLE_CHAR_NOUNS and i + 1 < n:
                piece, tag_next, start_next, end_next = tokens[i + 1]
                if tag_next not in _NOUN_TAGS or start_next != end:
                    break
                i += 1
                form, end = form + piece, end_next
            if i + 1 < n and tokens[i + 1][1] in _DERIVING_SUFFIXES and tokens[i + 1][2] == end:
                i += 1  # 추천+하+지 않다: a predicate, so that its negation is kept
                i = _add_predicate(terms, tokens, first, i, form + tokens[i][0] + "다")
            elif len(form) > 1 or form in SINGLE_CHAR_NOUNS:
                terms.append(form)
        elif tag == "XR":
            if i + 1 < n and tokens[i + 1][1] in _DERIVING_SUFFIXES:
                i += 1  # 지루+하다, 깔끔+하다
                i = _add_predicate(terms, tokens, first, i, form + tokens[i][0] + "다")
        elif tag in _PREDICATE_TAGS:
            i = _add_predicate(terms, tokens, first, i, form + "다")
        elif tag == "VCN":
            terms.append("아니다")
        elif tag == "VX":
            if form in _NEGATING_AUXILIARIES:  # 않/못하/말 with no predicate before them: never dropped
                terms.append(form + "다")
        elif tag == "MAG" and form in _NEGATING_ADVERBS and i + 1 < n and tokens[i + 1][1] in _DERIVING_SUFFIXES:
            # kiwipiepy reads 못하지 않다 as 못 + 하 (XSA)
            i = _add_predicate(terms, tokens, i + 1, i + 1, tokens[i + 1][0] + "다")
        elif (tag == "MAG" or tag == "IC") and form in JUDGMENT_WORDS:
            terms.append(form)
        i += 1
    return terms


def _add_predicate(terms: list[str], tokens: list[tuple], first: int, last: int, lemma: str) -> int:
    """Append `lemma` for the predicate tokens[first..last], negated when 안/못 comes before it or -지 않다 /
    -지 못하다 / -지 말다 after it; returns the index of the last token used (the negating ones included)."""
    prefix = ""
    if first > 0 and tokens[first - 1][1] == "MAG":
        prefix = _NEGATING_ADVERBS.get(tokens[first - 1][0], "")
    n = len(tokens)
    j = last + 1
    if j < n and tokens[j][0] == "지" and tokens[j][1] == "EC":
        j += 1
        while j < n and tokens[j][1] == "JX":  # 좋지는 않다, 좋지도 않다
            j += 1
        if j < n:
            form, tag = tokens[j][0], tokens[j][1]
            if tag in ("VX", "VV") and form in _NEGATING_AUXILIARIES:
                prefix, last = _NEGATING_AUXILIARIES[form], j
            elif tag == "MAG" and form in _NEGATING_ADVERBS and j + 1 < n and tokens[j + 1][0] == "하":
                prefix, last = _NEGATING_ADVERBS[form], j + 1  # kiwipiepy reads 먹지 못했다 as 지 + 못 + 하
    terms.append(prefix + lemma)
    return last


def _is_predicate(term: str) -> bool:
    return term.endswith("다") or term.startswith(_NEGATION_PREFIXES)


class TermCounts:
    """How many reviews of each class use each term (a term counts once per review), added to chunk by chunk, so
    that a file of any length needs memory for its vocabulary only. Unlabeled reviews count for
    `frequent_nouns` but not for `distinctive`."""

    def __init__(self) -> None:
        self.docs_per_class: Counter = Counter()
        self.per_class: dict[object, Counter] = {}
        self.unlabeled: Counter = Counter()

    def add(self, term_lists: Sequence[Sequence[str]], labels: Sequence[object]) -> None:
        if len(term_lists) != len(labels):
            raise ValueError(f"{len(term_lists)} term lists but {len(labels)} labels")
        for terms, label in zip(term_lists, labels, strict=True):
            if _unlabeled(label):
                self.unlabeled.update(set(terms))
                continue
            self.docs_per_class[label] += 1
            self.per_class.setdefault(label, Counter()).update(set(terms))

    def distinctive(self, *, top: int = 15, min_count: int = 5, alpha_0: float = 1000.0) -> dict[str, list[TermScore]]:
        """For each class label, its `top` most distinctive terms against all other classes, best first.

        A term is listed when at least `min_count` reviews of the class use it and its z-score is positive.
        `alpha_0` is the prior's total (see below). With a single class there is nothing to contrast, and its
        list is empty."""
        import numpy as np

        counts, docs_per_class = self.per_class, self.docs_per_class
        classes = sorted(counts, key=str)
        result: dict[str, list[TermScore]] = {label: [] for label in classes}
        vocabulary = sorted(set().union(*counts.values())) if counts else []
        if len(classes) < 2 or not vocabulary:
            return result

        y = np.array([[counts[label][term] for term in vocabulary] for label in classes], dtype=np.float64)
        total = y.sum(axis=0)  # reviews using each term, over all classes
        n = total.sum()
        # alpha_0 = 1000 pseudo-counts, spread over the terms as in the whole corpus. A fixed size shrinks a small
        # corpus hard (the 362-row sample has about 1,600 term-review pairs), where counts are noisy, and a large
        # one little. The corpus' own total as alpha_0 (on 20,000 NSMC reviews 130,000) squeezed every z under 6
        # and let terms of 5-8 reviews (a director's name, 유치) into the top; 1000 and 100 gave nearly the same.
        a0 = float(alpha_0)
        a = a0 * total / n
        docs = np.array([docs_per_class[label] for label in classes], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            for k, label in enumerate(classes):
                yi, yj = y[k], total - y[k]
                ni, nj = yi.sum(), n - yi.sum()
                delta = np.log((yi + a) / (ni + a0 - yi - a)) - np.log((yj + a) / (nj + a0 - yj - a))
                z = delta / np.sqrt(1.0 / (yi + a) + 1.0 / (yj + a))
                other_docs = docs.sum() - docs[k]
                keep = np.flatnonzero((yi >= min_count) & (z > 0) & np.isfinite(z))
                # best z first; ties by term so that the order never depends on the input's row order
                ranked = sorted(keep.tolist(), key=lambda w: (-z[w], vocabulary[w]))[:top]
                result[label] = [
                    TermScore(
                        term=vocabulary[w],
                        z=float(z[w]),
                        count=int(yi[w]),
                        share=float(yi[w] / docs[k]),
                        other_share=float(yj[w] / other_docs) if other_docs else 0.0,
                    )
                    for w in ranked
                ]
        return result

    def frequent_nouns(self, top: int = 10, min_count: int = 5) -> list[tuple[str, int]]:
        """The nouns mentioned by the most reviews, with their review counts, for choosing aspects: predicates,
        negated terms and NOUN_STOPWORDS are left out, and so are nouns fewer than `min_count` reviews mention."""
        counts: Counter = Counter()
        for per_term in [*self.per_class.values(), self.unlabeled]:
            counts.update({t: c for t, c in per_term.items() if not _is_predicate(t) and t not in NOUN_STOPWORDS})
        ranked = sorted(((t, c) for t, c in counts.items() if c >= min_count), key=lambda tc: (-tc[1], tc[0]))
        return ranked[:top]


def distinctive_terms(
    term_lists: Sequence[Sequence[str]],
    labels: Sequence[object],
    *,
    top: int = 15,
    min_count: int = 5,
    alpha_0: float = 1000.0,
) -> dict[str, list[TermScore]]:
    """For each class label, its `top` most distinctive terms against all other classes, best first
    (`TermCounts.distinctive` of these reviews). Rows whose label is None, NaN or blank are left out."""
    counts = TermCounts()
    counts.add(term_lists, labels)
    return counts.distinctive(top=top, min_count=min_count, alpha_0=alpha_0)


def _unlabeled(label: object) -> bool:
    if label is None:
        return True
    if isinstance(label, float) and math.isnan(label):
        return True
    return isinstance(label, str) and not label.strip()


def frequent_nouns(term_lists: Sequence[Sequence[str]], top: int = 10, min_count: int = 5) -> list[tuple[str, int]]:
    """The nouns mentioned by the most reviews (`TermCounts.frequent_nouns` of these reviews)."""
    counts = TermCounts()
    counts.add(term_lists, [None] * len(term_lists))
    return counts.frequent_nouns(top=top, min_count=min_count)
