"""What each step of the rs-normalize recipe does to real reviews.

Samples reviews from NSMC (../shared/data/nsmc_reviews.csv.gz; falls back to data/sample_reviews.csv when it
is missing) and measures, step by step:

* clean           `clean_text` (NFC, entities, URLs, invisible characters, whitespace, repeats) vs raw text
* sentence split  `NormalizationRecipe(sentence_split=True)` vs the clean-only recipe
* spacing         `NormalizationRecipe(sentence_split=False, spacing=True)` vs the clean-only recipe
* typos           `NormalizationRecipe(sentence_split=False, typos=True)` vs the clean-only recipe

For each step: the share of reviews it changes, how many characters it changes (mean |length delta| and
mean edited characters), its throughput alone (the recipe's time minus the clean-only time), and the
reviews that lost non-whitespace characters other than by the intended cleanup:

* clean: a lost character must lie in a URL/e-mail, be a control/invisible character, or be a character
  that repeats more than `max_repeat` times in a row (alone or in a two-character unit);
* sentence split and spacing: any change to a non-whitespace character counts (they may only move spaces);
* typos: lost characters that are not Hangul syllables (punctuation, emoji, jamo such as ㅋ, Latin,
  digits) count; rewritten Hangul is what typo correction is for.

For spacing and typos it also reports how many changes are whitespace-only, and for spacing how often a
single whitespace-separated word of the input is split (slang such as 개꿀 → 개 꿀). Finally it checks that
the default recipe is idempotent: normalize(normalize(x)) == normalize(x).

Run from the repository root:

    python bench/normalize_effects.py --n 20000

The output is markdown, ready to paste into the README. About 1-2 minutes for 20,000 reviews on 2 cores.
"""

from __future__ import annotations

import argparse
import difflib
import html
import random
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from review_sentiment.normalize import (
    _URLS,
    NormalizationRecipe,
    ReviewNormalizer,
    clean_text,
    shared_kiwi,
)

REPO = Path(__file__).resolve().parent.parent
NSMC = REPO.parent / "shared" / "data" / "nsmc_reviews.csv.gz"
FALLBACK = REPO / "data" / "sample_reviews.csv"

_WS = re.compile(r"\s+")
_HANGUL_SYLLABLE = re.compile("[\uac00-\ud7a3]")

CLEAN_ONLY = NormalizationRecipe(sentence_split=False)
RECIPES = {
    "sentence split": NormalizationRecipe(sentence_split=True),
    "spacing": NormalizationRecipe(sentence_split=False, spacing=True),
    "typos": NormalizationRecipe(sentence_split=False, typos=True),
}


# --------------------------------------------------------------------------------------------- data


def load_reviews(path: Path, n: int, seed: int) -> tuple[list[str], str]:
    """`n` reviews sampled with `seed`, and a line that says where they came from."""
    note = ""
    if not path.exists():
        note = f"{path} is missing: falling back to {FALLBACK.relative_to(REPO)}. "
        path = FALLBACK
    frame = pd.read_csv(path, usecols=["review"], dtype={"review": str}, keep_default_na=False)
    take = min(n, len(frame))
    reviews = frame["review"].sample(n=take, random_state=seed).tolist()
    return reviews, f"{note}{take:,} reviews sampled (seed {seed}) from {path.name} ({len(frame):,} rows)."


# ------------------------------------------------------------------------------------- text helpers


def squeeze(text: str) -> str:
    """The text without any whitespace."""
    return _WS.sub("", text)


def edited_chars(before: str, after: str) -> int:
    """Characters inserted, deleted or replaced to turn `before` into `after` (difflib opcodes)."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def unescape_fully(text: str) -> str:
    while (unescaped := html.unescape(text)) != text:
        text = unescaped
    return text


def is_invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs") and char != "\u200d"


def repeated_chars(text: str, max_repeat: int) -> set[str]:
    """Characters that occur in a run longer than `max_repeat`, alone or in a two-character unit."""
    single = re.compile(rf"([^\d\s])\1{{{max_repeat},}}")
    pair = re.compile(rf"([^\d\s]{{2}})\1{{{max_repeat},}}")
    chars = {m.group(1) for m in single.finditer(text)}
    for m in pair.finditer(text):
        chars.update(m.group(1))
    return chars


def unexplained_clean_loss(raw: str, cleaned: str, max_repeat: int) -> Counter:
    """Non-whitespace characters that `clean_text` dropped (or added) without a cleanup rule to explain it."""
    base = unicodedata.normalize("NFC", unescape_fully(raw))
    allowed = {c for c in base if is_invisible(c)}
    allowed.update("".join(m.group(0) for m in _URLS.finditer(base)))
    allowed |= repeated_chars(base, max_repeat)
    lost = Counter(squeeze(base)) - Counter(squeeze(cleaned))
    gained = Counter(squeeze(cleaned)) - Counter(squeeze(base))
    bad = Counter({c: k for c, k in lost.items() if c not in allowed})
    bad.update({f"+{c}": k for c, k in gained.items()})
    return bad


def non_hangul_loss(before: str, after: str) -> Counter:
    """Non-whitespace characters other than Hangul syllables that are gone from `after`."""
    keep = lambda text: Counter(c for c in squeeze(text) if not _HANGUL_SYLLABLE.match(c))  # noqa: E731
    return keep(before) - keep(after)


def split_words(before: str, after: str) -> list[tuple[str, str]]:
    """Whitespace-separated words of `before` that `after` splits (after may only add/remove spaces)."""
    boundaries, pos = set(), 0
    for word in after.split():
        pos += len(word)
        boundaries.add(pos)  # a space follows squeezed position `pos`
    splits, pos = [], 0
    for word in before.split():
        cuts = [b - pos for b in sorted(boundaries) if pos < b < pos + len(word)]
        if cuts:
            pieces = [word[i:j] for i, j in zip([0, *cuts], [*cuts, len(word)], strict=True)]
            splits.append((word, " ".join(pieces)))
        pos += len(word)
    return splits


def new_space_contexts(before: str, after: str, width: int = 6) -> list[tuple[str, str]]:
    """(left, right) context around every space `after` has and `before` lacks (same non-space text)."""

    def boundaries(text: str) -> set[int]:
        out, pos = set(), 0
        for word in text.split():
            pos += len(word)
            out.add(pos)
        return out

    flat = squeeze(before)
    new = sorted(boundaries(after) - boundaries(before) - {len(flat)})
    return [(flat[max(0, b - width) : b], flat[b : b + width]) for b in new]


def char_class(char: str) -> str:
    if _HANGUL_SYLLABLE.match(char):
        return "Hangul syllable"
    if "\u3131" <= char <= "\u318e":
        return "jamo (ㅋ, ㅠ, …)"
    if char.isdigit():
        return "digit"
    if char.isascii() and char.isalpha():
        return "Latin"
    if unicodedata.category(char).startswith("P"):
        return "punctuation"
    return "other"


def fmt(text: str, limit: int = 120) -> str:
    """A markdown code span, shortened to `limit` characters."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if text else "(empty)"


# ------------------------------------------------------------------------------------------ results


@dataclass
class StepResult:
    name: str
    before: list[str]
    after: list[str]
    seconds: float
    note: str = ""
    lost: list[tuple[int, Counter]] = field(default_factory=list)  # (index, unexplained lost characters)
    details: list[str] = field(default_factory=list)  # extra markdown lines
    example_pool: list[int] | None = None  # indices to draw examples from (default: all changed)

    @property
    def n(self) -> int:
        return len(self.before)

    @property
    def changed(self) -> list[int]:
        return [i for i, (b, a) in enumerate(zip(self.before, self.after, strict=True)) if b != a]

    def row(self) -> str:
        changed = self.changed
        share = 100 * len(changed) / self.n if self.n else 0.0
        pairs = zip(self.before, self.after, strict=True)
        dlen_all = sum(abs(len(a) - len(b)) for b, a in pairs) / max(self.n, 1)
        dlen_changed = dlen_all * self.n / len(changed) if changed else 0.0
        edits = [edited_chars(self.before[i], self.after[i]) for i in changed]
        mean_edits = sum(edits) / len(edits) if edits else 0.0
        rate = f"{self.n / self.seconds:,.0f}" if self.seconds > 0 else "n/a"
        name = f"{self.name}{self.note}"
        return (
            f"| {name} | {share:.1f} % | {dlen_all:.2f} | {dlen_changed:.2f} | {mean_edits:.2f} | {rate} "
            f"| {len(self.lost)} |"
        )


TABLE_HEADER = (
    "| step | changed | mean \\|Δlen\\| (all) | mean \\|Δlen\\| (changed) | mean edited chars (changed) "
    "| reviews/s (step alone) | reviews with unintended char loss |\n"
    "|---|---:|---:|---:|---:|---:|---:|"
)


def examples(result: StepResult, k: int, rng: random.Random) -> list[str]:
    """Up to `k` short before → after examples, shortest-first among a seeded random pick."""
    pool = result.changed if result.example_pool is None else result.example_pool
    short = [i for i in pool if len(result.before[i]) <= 100] or pool
    picked = sorted(rng.sample(short, min(k, len(short))), key=lambda i: len(result.before[i]))
    return [f"- {fmt(result.before[i])} → {fmt(result.after[i])}" for i in picked]


# -------------------------------------------------------------------------------------------- steps


def timed(fn: Callable[[], list[str]]) -> tuple[list[str], float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def clean_only(raw: list[str]) -> tuple[list[str], float]:
    """The clean-only recipe's output (the baseline of every Kiwi step) and its time."""
    return timed(lambda: ReviewNormalizer(CLEAN_ONLY).normalize(raw))


def measure_clean(raw: list[str], max_repeat: int) -> tuple[StepResult, float]:
    cleaned, seconds = timed(lambda: [clean_text(t, max_repeat) for t in raw])
    result = StepResult("clean", raw, cleaned, seconds)
    for i, (r, c) in enumerate(zip(raw, cleaned, strict=True)):
        bad = unexplained_clean_loss(r, c, max_repeat)
        if bad:
            result.lost.append((i, bad))
    # Which cleanup rule fires, each tested on the raw text on its own (a review can hit several).
    rules = {
        "HTML entities": lambda t: unescape_fully(t) != t,
        "NFC": lambda t: unicodedata.normalize("NFC", t) != t,
        "URL / e-mail": lambda t: bool(_URLS.search(t)),
        "control / invisible": lambda t: any(is_invisible(c) and c not in "\t\n\r" for c in t),
        "whitespace (collapse/strip)": lambda t: _WS.sub(" ", t).strip() != t,
        "repeats": lambda t: bool(repeated_chars(t, max_repeat)),
    }
    parts = [f"{name} {100 * sum(map(rule, raw)) / max(len(raw), 1):.2f} %" for name, rule in rules.items()]
    result.details.append("Reviews each cleanup rule applies to: " + ", ".join(parts) + ".")
    return result, seconds


def measure_kiwi_step(
    name: str, raw: list[str], base: list[str], base_seconds: float, k: int, rng: random.Random
) -> StepResult:
    """Run the recipe `name` on `raw` and compare it with the clean-only output `base` of the same reviews."""
    after, seconds = timed(lambda: ReviewNormalizer(RECIPES[name]).normalize(raw))
    result = StepResult(name, base, after, max(seconds - base_seconds, 1e-9))
    changed = result.changed
    ws_only = [i for i in changed if squeeze(base[i]) == squeeze(after[i])]
    non_ws = [i for i in changed if squeeze(base[i]) != squeeze(after[i])]

    if name == "typos":
        for i in non_ws:
            bad = non_hangul_loss(base[i], after[i])
            if bad:
                result.lost.append((i, bad))
    else:
        result.lost = [(i, Counter(squeeze(base[i])) - Counter(squeeze(after[i]))) for i in non_ws]

    if name == "sentence split" and changed:
        contexts = [c for i in ws_only for c in new_space_contexts(base[i], after[i])]
        by_class = Counter(char_class(left[-1]) for left, _ in contexts)
        result.details.append(
            f"{len(contexts):,} spaces inserted; the character before the new space is: "
            + ", ".join(f"{cls} {100 * k / len(contexts):.1f} %" for cls, k in by_class.most_common())
            + "."
        )
        odd = [
            (left, right)
            for left, right in contexts
            if char_class(left[-1]) == char_class(right[0]) and char_class(right[0]) in ("digit", "Latin")
        ]
        result.details.append(
            f"New spaces between two digits or two Latin letters (would cut a number or word): {len(odd)}"
            + ("; e.g. " + ", ".join(fmt(f"{left}|{right}") for left, right in odd[:k]) if odd else "")
            + "."
        )
        no_punct = [f"{left}|{right}" for left, right in contexts if char_class(left[-1]) != "punctuation"]
        if no_punct:
            result.details.append(
                "Spaces inserted without punctuation before them (| marks the new space): "
                + ", ".join(fmt(c) for c in rng.sample(no_punct, min(2 * k, len(no_punct))))
                + "."
            )
    if name in ("spacing", "typos") and changed:
        result.details.append(
            f"Of the {len(changed):,} changed reviews, {100 * len(ws_only) / len(changed):.1f} % change only "
            f"whitespace and {100 * len(non_ws) / len(changed):.1f} % change other characters."
        )
        joined = sum(1 for i in ws_only if split_words(after[i], base[i]))  # a word of `after` was 2 before
        result.details.append(
            f"Whitespace-only changes that remove a space (join words): "
            f"{100 * joined / max(len(ws_only), 1):.1f} % of them."
        )
    if name == "spacing" and changed:
        split_pairs = {i: split_words(base[i], after[i]) for i in ws_only}
        split_pairs = {i: p for i, p in split_pairs.items() if p}
        result.details.append(
            f"Reviews where a single input word got split: {100 * len(split_pairs) / len(changed):.1f} % of "
            f"the changed reviews ({100 * len(split_pairs) / len(base):.1f} % of all)."
        )
        words = Counter(f"{w} → {s}" for pairs in split_pairs.values() for w, s in pairs)
        total_words = sum(len(b.split()) for b in base)
        result.details.append(
            f"Words split: {sum(words.values()):,} of {total_words:,} input words "
            f"({100 * sum(words.values()) / max(total_words, 1):.1f} %). Most frequent splits: "
            + ", ".join(f"{fmt(w)} ×{k}" for w, k in words.most_common(15))
            + "."
        )
    if name == "typos":
        result.example_pool = non_ws
        result.details += typo_vs_join(base, after, non_ws, RECIPES[name].max_repeat, k, rng)
    return result


def typo_vs_join(
    base: list[str], after: list[str], indices: list[int], max_repeat: int, k: int, rng: random.Random
) -> list[str]:
    """How much of the typo step is Kiwi's tokenize+join rewriting the text even without typo correction."""
    if not indices:
        return []
    kiwi = shared_kiwi()
    joined = {
        i: clean_text(kiwi.join(tokens) if tokens else base[i], max_repeat)
        for i, tokens in zip(indices, kiwi.tokenize([base[i] for i in indices]), strict=True)
    }
    same_as_join = [i for i in indices if after[i] == joined[i]]
    join_rewrites = [i for i in indices if squeeze(joined[i]) != squeeze(base[i])]
    typo_fixes = [i for i in indices if after[i] != joined[i]]
    pct = lambda part: f"{100 * len(part) / len(indices):.1f} %"  # noqa: E731
    summary = (
        f"Of the {len(indices):,} reviews with non-whitespace changes, tokenize+join *without* typo "
        f"correction already rewrites {pct(join_rewrites)}, and for {pct(same_as_join)} the typo output is "
        f"exactly that rewrite: no typo was corrected. The other {pct(typo_fixes)} differ from the plain "
        "rewrite, i.e. typo correction proper changed something."
    )
    short = [i for i in typo_fixes if len(base[i]) <= 100] or typo_fixes
    picked = sorted(rng.sample(short, min(k, len(short))), key=lambda i: len(base[i]))
    block = "Changes made by typo correction proper (plain tokenize+join → typos output):\n\n" + "\n".join(
        f"- {fmt(joined[i])} → {fmt(after[i])}" for i in picked
    )
    rewrites = [i for i in same_as_join if len(base[i]) <= 100] or same_as_join
    picked = sorted(rng.sample(rewrites, min(k, len(rewrites))), key=lambda i: len(base[i]))
    block2 = "Rewrites by tokenize+join alone (no typo corrected; before → after):\n\n" + "\n".join(
        f"- {fmt(base[i])} → {fmt(after[i])}" for i in picked
    )
    return [summary, block, block2]


def check_idempotence(recipe: NormalizationRecipe, once: list[str], k: int, label: str = "") -> list[str]:
    """normalize(normalize(x)) == normalize(x) on `once` = normalize(x); violations as repr."""
    twice = ReviewNormalizer(recipe).normalize(once)
    bad = [i for i, (a, b) in enumerate(zip(once, twice, strict=True)) if a != b]
    lines = [f"{label or recipe.describe()}: {len(bad)} of {len(once):,} reviews change on a second pass."]
    if bad:
        lines.append("")
        lines += [f"- {once[i]!r} → {twice[i]!r}" for i in bad[:k]]
        lines.append("")
    return lines


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="reviews to sample (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="sampling and example seed (default 0)")
    parser.add_argument("--data", type=Path, default=NSMC, help=f"CSV(.gz) with a review column (default {NSMC})")
    parser.add_argument("--examples", type=int, default=5, help="examples per step (default 5)")
    parser.add_argument(
        "--typo-n",
        type=int,
        default=None,
        help="measure typos on only the first this many sampled reviews (the slowest step)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    raw, source = load_reviews(args.data, args.n, args.seed)
    max_repeat = NormalizationRecipe().max_repeat

    build_start = time.perf_counter()
    kiwi = shared_kiwi()
    build_seconds = time.perf_counter() - build_start
    kiwi.tokenize("워밍업 문장입니다.")  # first-call costs stay out of the step timings
    ReviewNormalizer(NormalizationRecipe(typos=True, spacing=True)).normalize(["워밍업이에요.맞춤법틀린거"])

    clean, clean_seconds = measure_clean(raw, max_repeat)
    base, base_seconds = clean_only(raw)
    results = [clean]
    for name in RECIPES:
        if name == "typos" and args.typo_n and args.typo_n < len(raw):
            sub_raw = raw[: args.typo_n]
            sub_base, sub_base_seconds = clean_only(sub_raw)
            result = measure_kiwi_step(name, sub_raw, sub_base, sub_base_seconds, args.examples, rng)
            result.note = f" (first {args.typo_n:,})"
        else:
            result = measure_kiwi_step(name, raw, base, base_seconds, args.examples, rng)
        results.append(result)

    print("## Normalization effects\n")
    print(source)
    print(
        f"Kiwi build: {build_seconds:.2f} s (num_workers={kiwi.num_workers}). Clean-only recipe: "
        f"{len(raw) / base_seconds:,.0f} reviews/s. Each Kiwi step is compared with the clean-only output; "
        "its reviews/s is the recipe's time minus the clean-only time.\n"
    )
    print(TABLE_HEADER)
    for result in results:
        print(result.row())
    for result in results:
        print(f"\n### {result.name}{result.note}\n")
        for line in result.details:
            print(line + "\n")
        title = "Non-whitespace changes" if result.example_pool is not None else "Examples"
        lines = examples(result, args.examples, rng)
        if lines:
            print(f"{title} (before → after):\n")
            print("\n".join(lines))
        if result.lost:
            chars = sum((lost for _, lost in result.lost), Counter())
            print(
                f"\nUnintended character loss in {len(result.lost)} reviews; characters: "
                + ", ".join(f"{c!r}×{k}" for c, k in chars.most_common(15))
                + ". Examples:\n"
            )
            for i, lost in result.lost[: args.examples]:
                print(f"- {result.before[i]!r} → {result.after[i]!r} (lost {dict(lost)})")
    print("\n### Idempotence: normalize(normalize(x)) == normalize(x)\n")
    by_name = {result.name: result for result in results}
    checks = [("clean_text", NormalizationRecipe(sentence_split=False), clean.after)]
    checks += [(name, recipe, by_name[name].after) for name, recipe in RECIPES.items()]
    for name, recipe, once in checks:
        label = f"{'**default** ' if recipe == NormalizationRecipe() else ''}{name} ({recipe.describe()})"
        print("\n".join(check_idempotence(recipe, once, args.examples, label)) + "\n")
    print(f"\nTotal runtime: {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
