"""The versioned review-normalization recipe, shared by preprocess, finetune and predict.

A model folder stores the recipe it was trained with (`NormalizationRecipe.to_dict`), and predict rebuilds
the same normalizer from it, so raw and preprocessed inputs get the same labels.

Recipe `rs-normalize` version 2, in order:

1. None / NaN / non-text cells become "" (kiwipiepy raises on them); lone UTF-16 surrogates are removed
   (kiwipiepy raises on them too; they come from badly decoded exports).
2. HTML entities are unescaped until none is left (`&amp;lt;3` → `<3`), so a second pass changes nothing.
3. Unicode NFC — never NFKC, which turns compatibility jamo such as ㅋ into conjoining jamo that Korean
   vocabularies lack. NFC also recomposes the NFD text of macOS exports.
4. URLs and e-mail addresses are replaced by a space: they carry no sentiment and eat the token budget.
   A URL starts with http://, https:// or www. and runs over ASCII URL characters only (RFC 3986 unreserved
   and reserved characters and %, but not , ( ) ' " < > or whitespace), and does not end in . ! ? : ; ~, so
   Hangul glued to it and sentence punctuation after it stay: "https://a.kr/x좋아요!" → "좋아요!". An
   e-mail address is an ASCII local part, @ and an ASCII domain with at least one dot whose last label starts
   with a letter ("abc@naver.com으로" → "으로").
5. Control and invisible format characters (zero-width space, BOM, direction marks) are removed; the
   zero-width joiner stays because emoji sequences (👨‍👩‍👧) need it. Emoji are kept: KcELECTRA kept them
   in pretraining and they are strong sentiment cues.
6. Runs of one character longer than `max_repeat` are cut to `max_repeat` (ㅋㅋㅋㅋㅋ → ㅋㅋ, !!!!! → !!), and
   so are runs of a two-character unit (ㅋㅎㅋㅎㅋㅎ → ㅋㅎㅋㅎ). Digits are never collapsed: 10000원 stays
   10000원 (soynlp's repeat_normalize turns it into 100원). Whitespace is collapsed to single spaces.
7. kiwipiepy sentence splitting (`sentence_split`, default on): where a sentence boundary follows
   punctuation, an emoji or jamo (ㅋㅋ) with no space, one space is inserted ("좋아요.배송도" → "좋아요. 배송도").
   Boundaries right after a syllable, letter or digit are ignored, because kiwipiepy sometimes puts them
   inside a word (재미지|다). Nothing but spaces ever changes, and splitting repeats until stable.
8. kiwipiepy spacing correction (`spacing`, default off) and typo correction (`typos`, default off).

Why 7 is on and 8 is off (measured on 20,000 NSMC reviews with `python bench/normalize_effects.py`; the
table is in the README): sentence splitting touches about one review in seven, only adds spaces, and is
idempotent. Kiwi's `space()` changes about 72 % of reviews and splits about a fifth of all words, including
forms a pretrained tokenizer already knows (볼만한 → 볼 만한, 꿀잼 → 꿀 잼, B급 → B 급), and is not
idempotent. Typo correction goes through morpheme analysis and re-joining: most of the reviews it changes
are rewritten without any typo fixed (이게 → 이것이, 되었고 → 됐고), some "fixes" are wrong
(왜이러케 → 왜이러하게), and it is the slowest step. Both stay available for data with heavy spacing errors
(`rs preprocess --spacing --typos`); they are recorded in the recipe so predict repeats them.

Stopwords are never removed: kiwipiepy's default stopword list drops negation (않, 없, 아니).

Versions. Version 2 changed only step 4. Version 1 took a URL to run from http://, https:// or www. to the next
whitespace, and an e-mail address to be regex word characters around @; both match Hangul, so it also removed
Korean text glued to them ("사이트 http://x.com,별로임" → "사이트", "링크(http://naver.me/x)참고하세요 별로" →
"링크( 별로"). Version 1 is kept exactly for the models and processed files that recorded it:
`NormalizationRecipe(version=1)`, which `from_dict` builds from their metadata, normalizes as at training time.
New recipes are version 2.
"""

from __future__ import annotations

import functools
import html
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields

from review_sentiment.errors import RsError
from review_sentiment.reporting import SILENT, Reporter

RECIPE_NAME = "rs-normalize"
RECIPE_VERSION = 2

_LONE_SURROGATES = re.compile("[\ud800-\udfff]")
# Step 4, per recipe version. Version 1 must never change: models trained with it are scored with it.
_URLS_V1 = re.compile(r"(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+\b", re.IGNORECASE)
# ASCII only (re.ASCII also keeps IGNORECASE from matching the Kelvin sign or long s as k and s). A URL's last
# character is not . ! ? : ; ~ (sentence punctuation and Korean's trailing tilde) or ] (a closing bracket).
_URL_V2 = r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&*+;=%]*[A-Za-z0-9\-_/#=&%+*$@]"
# An e-mail address's last domain label starts with a letter, so scores such as 10@3.5 stay.
_EMAIL_V2 = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z][A-Za-z0-9-]*"
_URLS_V2 = re.compile(f"{_URL_V2}|{_EMAIL_V2}", re.IGNORECASE | re.ASCII)
_URL_PATTERNS = {1: _URLS_V1, 2: _URLS_V2}
_URLS = _URL_PATTERNS[RECIPE_VERSION]  # the current version's (bench/normalize_effects.py uses it)
_WHITESPACE = re.compile(r"\s+")
_HANGUL = re.compile("[\uac00-\ud7a3\u3131-\u318e\u1100-\u11ff]")
_KEEP_FORMAT_CHARS = {"\u200d"}  # zero-width joiner: part of emoji sequences


@dataclass(frozen=True)
class NormalizationRecipe:
    """Which normalization steps run. Stored in every model folder and processed-file sidecar."""

    sentence_split: bool = True
    spacing: bool = False
    typos: bool = False
    max_repeat: int = 2
    name: str = RECIPE_NAME
    version: int = RECIPE_VERSION

    def __post_init__(self) -> None:
        if self.name != RECIPE_NAME:
            raise RsError(f"Unknown normalization recipe {self.name!r}: this rs knows only {RECIPE_NAME!r}.")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise RsError(f"Unknown {RECIPE_NAME} version {self.version!r}: versions are whole numbers from 1.")
        if self.version > RECIPE_VERSION:
            raise RsError(
                f"The normalization recipe is version {self.version}, newer than this rs supports "
                f"({RECIPE_VERSION}). Upgrade rs: pip install -U review-sentiment."
            )
        if self.max_repeat < 1:
            raise RsError(f"max_repeat must be at least 1, got {self.max_repeat}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> NormalizationRecipe:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RsError(f"Unknown normalization settings {sorted(unknown)}: was this made by a newer rs?")
        return cls(**data)

    def describe(self) -> str:
        steps = ["nfc", "cleanup", f"repeats<={self.max_repeat}"]
        steps += [
            name
            for name, on in (
                ("sentences", self.sentence_split),
                ("spacing", self.spacing),
                ("typos", self.typos),
            )
            if on
        ]
        return f"{self.name} v{self.version} ({', '.join(steps)})"


def coerce_text(value: object) -> str:
    """A cell as text: None and NaN become "", other non-strings their str()."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value if isinstance(value, str) else str(value)


def _drop_invisible(text: str) -> str:
    out = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            out.append(" " if char in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85" else "")
        elif category in ("Cf", "Co", "Cs") and char not in _KEEP_FORMAT_CHARS:
            continue
        else:
            out.append(char)
    return "".join(out)


@functools.lru_cache(maxsize=8)
def _repeat_patterns(max_repeat: int) -> tuple[re.Pattern, re.Pattern]:
    single = re.compile(r"([^\d\s])\1{" + str(max_repeat) + ",}")
    pair = re.compile(r"([^\d\s]{2})\1{" + str(max_repeat) + ",}")
    return single, pair


def collapse_repeats(text: str, max_repeat: int = 2) -> str:
    """Cut runs of a character or a two-character unit to `max_repeat` copies; digits are left alone."""
    single, pair = _repeat_patterns(max_repeat)
    text = single.sub(lambda m: m.group(1) * max_repeat, text)
    return pair.sub(lambda m: m.group(1) * max_repeat, text)


def clean_text(value: object, max_repeat: int = 2, version: int = RECIPE_VERSION) -> str:
    """Steps 1-6 of the recipe `version` (the current one by default): pure-Python cleanup, no kiwipiepy."""
    urls = _URL_PATTERNS.get(version)
    if urls is None:
        raise RsError(f"Unknown {RECIPE_NAME} version {version!r}: this rs knows {sorted(_URL_PATTERNS)}.")
    text = _LONE_SURROGATES.sub("", coerce_text(value))
    # Entities can be nested (&amp;lt;) and removing characters can glue new ones together, so repeat the
    # whole cleanup until it is stable; every pass that changes something shortens or recomposes the text.
    for _ in range(8):
        before = text
        while True:
            unescaped = html.unescape(text)
            if unescaped == text:
                break
            text = _LONE_SURROGATES.sub("", unescaped)  # &#xd800; unescapes to U+FFFD, but be safe
        text = unicodedata.normalize("NFC", text)
        text = urls.sub(" ", text)
        text = _drop_invisible(text)
        text = _WHITESPACE.sub(" ", text).strip()
        text = collapse_repeats(text, max_repeat)
        if text == before:
            break
    return text


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))


@functools.lru_cache(maxsize=1)
def shared_kiwi():
    """One Kiwi per process: building it costs seconds and hundreds of MB."""
    from kiwipiepy import Kiwi

    from review_sentiment.inference import usable_cpu_cores

    # cores this process may use (a container's CPU limit, taskset), not the whole machine's
    return Kiwi(num_workers=min(usable_cpu_cores(), 8))


_MAX_SPLIT_PASSES = 4
_CHUNK_SIZE = 4096  # reviews per kiwipiepy call: large enough for its worker threads, small for progress


def _ends_inside_word(char: str) -> bool:
    """A Hangul syllable, letter or digit: a sentence boundary after it may cut a word (재미지|다)."""
    if "\u3131" <= char <= "\u318e":  # compatibility jamo (ㅋㅋ, ㅠㅠ) end a word
        return False
    return unicodedata.category(char)[0] in "LN"


# Where step 7 can insert a space: after a character that is not a letter, digit or space (or after compatibility
# jamo), right before a non-space. \w is letters, digits and "_"; "_" is punctuation to _ends_inside_word. A text
# without such a pair cannot change, so it skips kiwipiepy (about half of NSMC's reviews; identical output).
_SPLIT_CANDIDATE = re.compile(r"(?:[^\s\w]|[_\u3131-\u318e])\S")


def _blocks(text: str, limit: int) -> list[str]:
    """`text` cut into pieces of at most `limit` characters, after a space where there is one in the second
    half of the piece; joined, the pieces are `text` again."""
    blocks = []
    while len(text) > limit:
        cut = text.rfind(" ", limit // 2, limit)
        cut = cut + 1 if cut > 0 else limit
        blocks.append(text[:cut])
        text = text[cut:]
    return [*blocks, text] if text else blocks


def _blocks_of(texts: list[str]) -> tuple[list[str], list[int]]:
    """Every text's blocks (`_blocks`, SENTENCE_BLOCK_CHARS), and for each block the position of its text."""
    blocks, owners = [], []
    for owner, text in enumerate(texts):
        for block in _blocks(text, SENTENCE_BLOCK_CHARS):
            blocks.append(block)
            owners.append(owner)
    return blocks, owners


def _join_sentences(text: str, sentences) -> str:
    """Insert one space at sentence boundaries that follow punctuation, emoji or jamo and lack one."""
    pieces = []
    previous_end = None
    for sentence in sentences:
        if previous_end is not None:
            if sentence.start < previous_end:  # kiwipiepy sometimes returns overlapping sentences
                return text
            gap = text[previous_end : sentence.start]
            if gap.strip():  # kiwipiepy skipped characters: keep the text as it was
                return text
            if not gap and not _ends_inside_word(text[previous_end - 1]):
                gap = " "
            pieces.append(gap)
        elif sentence.start:
            pieces.append(text[: sentence.start])
        pieces.append(text[sentence.start : sentence.end])
        previous_end = sentence.end
    if previous_end is None:
        return text
    pieces.append(text[previous_end:])
    joined = "".join(pieces)
    # Only spaces may change; anything else means the offsets did not describe the text.
    return joined if _WHITESPACE.sub("", joined) == _WHITESPACE.sub("", text) else text


class ReviewNormalizer:
    """Applies one `NormalizationRecipe` to batches of review texts."""

    def __init__(self, recipe: NormalizationRecipe | None = None):
        self.recipe = recipe or NormalizationRecipe()

    @property
    def uses_kiwi(self) -> bool:
        return self.recipe.sentence_split or self.recipe.spacing or self.recipe.typos

    def load(self) -> None:
        """Build kiwipiepy's analyzer now (1-5 s, once per process) if the recipe uses it, so that this start-up
        cost is not counted in the first rows' speed. Its first analysis loads more of its model (about 2 s),
        so one short text is normalized too."""
        if self.uses_kiwi:
            self._normalize_chunk(["배송 빨라요!!좋아요ㅋㅋ 또 살게요"])  # a text kiwipiepy does not skip

    def normalize(
        self,
        texts: Iterable[object],
        on_progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Normalize every text; the result has exactly one string per input, in order. `on_progress(n)` is
        called as each batch of n texts is done (for a caller's progress count)."""
        texts = list(texts)
        if on_progress is None:
            return self._normalize_chunk(texts)
        out: list[str] = []
        for start in range(0, len(texts), _CHUNK_SIZE):
            out.extend(self._normalize_chunk(texts[start : start + _CHUNK_SIZE]))
            on_progress(min(_CHUNK_SIZE, len(texts) - start))
        return out

    def _normalize_chunk(self, texts: list[object]) -> list[str]:
        cleaned = [clean_text(t, self.recipe.max_repeat, self.recipe.version) for t in texts]
        if not self.uses_kiwi:
            return cleaned
        kiwi = shared_kiwi()
        positions = [i for i, t in enumerate(cleaned) if t]
        batch = [cleaned[i] for i in positions]
        if self.recipe.typos:
            batch = self._correct_typos(kiwi, batch)
        if self.recipe.spacing:
            batch = [_WHITESPACE.sub(" ", s).strip() for s in kiwi.space(batch, reset_whitespace=False)]
        if self.recipe.sentence_split:
            batch = self._split_sentences(kiwi, batch)
        for i, text in zip(positions, batch, strict=True):
            cleaned[i] = clean_text(text, self.recipe.max_repeat, self.recipe.version)
        return cleaned

    @staticmethod
    def _split_sentences(kiwi, texts: list[str]) -> list[str]:
        # Long texts go to kiwipiepy in blocks cut at spaces (see SENTENCE_BLOCK_CHARS); a block's trailing
        # space is kept aside so the blocks join back exactly.
        blocks, owners = _blocks_of(texts)
        trailing = [block[len(block.rstrip(" ")) :] for block in blocks]
        joined = ReviewNormalizer._split_blocks(kiwi, [block.rstrip(" ") for block in blocks])
        out = [""] * len(texts)
        for owner, block, space in zip(owners, joined, trailing, strict=True):
            out[owner] += block + space
        return out

    @staticmethod
    def _split_blocks(kiwi, texts: list[str]) -> list[str]:
        # Splitting a text changes how kiwipiepy splits it next time, so repeat until nothing changes:
        # normalization must be idempotent (a processed file normalized again stays the same).
        pending = [i for i, text in enumerate(texts) if _SPLIT_CANDIDATE.search(text)]
        out = list(texts)
        for _ in range(_MAX_SPLIT_PASSES):
            if not pending:
                break
            batch = [out[i] for i in pending]
            changed = []
            for i, text, sentences in zip(pending, batch, kiwi.split_into_sents(batch), strict=True):
                joined = _join_sentences(text, sentences)
                if joined != text:
                    out[i] = joined
                    changed.append(i)
            pending = changed
        return out

    @staticmethod
    def _correct_typos(kiwi, texts: list[str]) -> list[str]:
        out = []
        for text in texts:
            tokens = kiwi.tokenize(text, typos="basic")
            out.append(kiwi.join(tokens) if tokens else text)
        return out


class RawTextNormalizer:
    """No normalization (`rs predict --normalization none`, for a checkpoint rs did not train): each text as it
    is in the file. Only what a tokenizer cannot take changes: None, NaN and other non-text cells become text ("")
    as in step 1, lone UTF-16 surrogates are removed, and a text of only whitespace counts as empty."""

    recipe = None
    uses_kiwi = False

    def load(self) -> None:
        """Nothing to build (there for the same interface as ReviewNormalizer)."""

    def normalize(self, texts: Iterable[object], on_progress: Callable[[int], None] | None = None) -> list[str]:
        out = [_LONE_SURROGATES.sub("", coerce_text(text)) for text in texts]
        out = [text if text.strip() else "" for text in out]
        if on_progress is not None and out:
            on_progress(len(out))
        return out


def normalizer_for(recipe: NormalizationRecipe | None) -> ReviewNormalizer | RawTextNormalizer:
    """The normalizer of a recipe; None: no normalization (RawTextNormalizer)."""
    return RawTextNormalizer() if recipe is None else ReviewNormalizer(recipe)


SENTENCE_BLOCK_CHARS = 5000  # kiwipiepy's sentence splitting slows down sharply on longer texts


def split_sentences(texts: list[str]) -> list[list[str]]:
    """Each text cut into its sentences with kiwipiepy, only ever at a space: joining a text's sentences with
    spaces gives the text back, so nothing is lost and no word is cut.

    Texts are first cut at a space (or anywhere, when there is none) into blocks of at most
    SENTENCE_BLOCK_CHARS characters: kiwipiepy takes seconds on a 100,000-character text, and a block is far
    longer than any sentence a model reads at once.
    """
    blocks, owners = _blocks_of(texts)
    out: list[list[str]] = [[] for _ in texts]
    for owner, block, sentences in zip(owners, blocks, shared_kiwi().split_into_sents(blocks), strict=True):
        # Cut at the sentence starts rather than keeping kiwipiepy's spans, so characters it skips stay in, and
        # only where a space precedes: kiwipiepy sometimes starts a sentence inside a word (재미지|다).
        starts = sorted({0, *(s.start for s in sentences if 0 < s.start < len(block) and block[s.start - 1] == " ")})
        pieces = (block[a:b].strip() for a, b in zip(starts, [*starts[1:], len(block)], strict=True))
        out[owner].extend(piece for piece in pieces if piece)
    return out


def normalize_texts(texts: Iterable[object], recipe: NormalizationRecipe | None = None) -> list[str]:
    """Normalize review texts with `recipe` (the default recipe when None)."""
    return ReviewNormalizer(recipe).normalize(texts)


def normalize_reviews(recipe: NormalizationRecipe, texts: list, reporter: Reporter = SILENT) -> list[str]:
    """The texts normalized by `recipe`, counted as "Normalizing" progress."""
    with reporter.progress("Normalizing", len(texts), info="reviews") as task:
        return ReviewNormalizer(recipe).normalize(texts, on_progress=task.advance)
