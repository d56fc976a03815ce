"""`rs finetune --base tfidf`: TF-IDF + logistic regression, the fast CPU model and the yardstick.

Features are TF-IDF weights of character n-grams inside words (which survive spacing errors and Korean
endings: 재밌, 밌어, 어요) and of word uni- and bigrams (negation such as "안 좋아요"), computed on the
normalized text; a logistic regression with balanced class weights sits on top.

The model is saved without pickle, so loading a model folder cannot run code: the vocabularies go to
`tfidf_vocabulary.json`, the IDF weights and regression coefficients to `tfidf_weights.safetensors`, and
`rs_meta.json` records the weights' SHA-256. Loading checks the digest and every shape and refuses a folder
that does not match.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from review_sentiment.errors import RsError
from review_sentiment.io import file_digest

VOCABULARY_FILE = "tfidf_vocabulary.json"
WEIGHTS_FILE = "tfidf_weights.safetensors"
WORD_TOKENS = r"(?u)\S+"  # whitespace words: keeps emoji, ㅋㅋ and punctuation-attached endings
PREDICT_BATCH = 2048  # texts per scoring batch: progress moves per batch; the result does not depend on it


@dataclass(frozen=True)
class TfidfSettings:
    """Feature and regression settings of the TF-IDF baseline."""

    char_ngrams: tuple[int, int] = (1, 4)
    word_ngrams: tuple[int, int] = (1, 2)
    max_features: int = 300_000
    min_df: int = 2
    regularization: float = 4.0  # C of the logistic regression: larger fits the training data more closely

    def to_dict(self) -> dict:
        return asdict(self)


def _vectorizers(settings: TfidfSettings, vocabularies: dict | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    common = {"lowercase": False, "sublinear_tf": True, "dtype": np.float32}
    vocabularies = vocabularies or {}
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=tuple(settings.char_ngrams),
        min_df=settings.min_df,
        max_features=settings.max_features,
        vocabulary=vocabularies.get("char"),
        **common,
    )
    word = TfidfVectorizer(
        analyzer="word",
        token_pattern=WORD_TOKENS,
        ngram_range=tuple(settings.word_ngrams),
        min_df=settings.min_df,
        max_features=settings.max_features,
        vocabulary=vocabularies.get("word"),
        **common,
    )
    return char, word


class TfidfClassifier:
    """Character + word TF-IDF features and a (multinomial) logistic regression."""

    def __init__(self, labels: list[str], settings: TfidfSettings, char, word, coef, intercept):
        self.labels = list(labels)
        self.settings = settings
        self.char, self.word = char, word
        # C order: scikit-learn's coef_ can be Fortran-ordered, and safetensors stores the raw buffer
        self.coef = np.ascontiguousarray(coef, dtype=np.float32)
        self.intercept = np.ascontiguousarray(intercept, dtype=np.float32)

    @classmethod
    def fit(cls, texts: list[str], labels: list[str], label_names: list[str], settings: TfidfSettings | None = None):
        from sklearn.linear_model import LogisticRegression

        settings = settings or TfidfSettings()
        char, word = _vectorizers(settings)
        features = _stack(char.fit_transform(texts), word.fit_transform(texts))
        regression = LogisticRegression(C=settings.regularization, class_weight="balanced", max_iter=2000)
        regression.fit(features, [label_names.index(label) for label in labels])
        return cls(label_names, settings, char, word, regression.coef_, regression.intercept_)

    def features(self, texts: list[str]):
        return _stack(self.char.transform(texts), self.word.transform(texts))

    def encode(self, texts: list[str]) -> list[str]:
        return texts

    @staticmethod
    def parts(encoded: list[str]) -> list[int]:
        return [1] * len(encoded)  # TF-IDF reads texts of any length whole

    def predict_proba(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Class probabilities, scored in batches of PREDICT_BATCH texts so that `on_batch(n)` can show progress."""
        parts = [
            self._probabilities(texts[start : start + PREDICT_BATCH], on_batch)
            for start in range(0, len(texts), PREDICT_BATCH)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), dtype=np.float32)

    def _probabilities(self, texts: list[str], on_batch: Callable[[int], None] | None) -> np.ndarray:
        scores = self.features(texts) @ self.coef.T + self.intercept
        scores = np.asarray(scores, dtype=np.float64)
        if len(self.labels) == 2:  # binary regression: one score for the second class
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            probabilities = np.stack([1.0 - positive, positive], axis=1)
        else:
            exp = np.exp(scores - scores.max(axis=1, keepdims=True))
            probabilities = exp / exp.sum(axis=1, keepdims=True)
        if on_batch:
            on_batch(len(texts))
        return probabilities.astype(np.float32)

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        vocabularies = {
            "char": {term: int(i) for term, i in self.char.vocabulary_.items()},
            "word": {term: int(i) for term, i in self.word.vocabulary_.items()},
        }
        (folder / VOCABULARY_FILE).write_text(
            json.dumps(
                {"labels": self.labels, "settings": self.settings.to_dict(), **vocabularies}, ensure_ascii=False
            ),
            encoding="utf-8",
        )
        save_file(
            {
                "char_idf": self.char.idf_.astype(np.float32),
                "word_idf": self.word.idf_.astype(np.float32),
                "coef": self.coef,
                "intercept": self.intercept,
            },
            str(folder / WEIGHTS_FILE),
        )

    @classmethod
    def load(cls, folder: Path, expected_labels: list[str], expected_digest: str | None) -> TfidfClassifier:
        """Load and verify a saved baseline; any mismatch is refused rather than guessed around."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        weights_path, vocabulary_path = folder / WEIGHTS_FILE, folder / VOCABULARY_FILE
        for path in (weights_path, vocabulary_path):
            if not path.exists():
                raise RsError(f"{folder} is incomplete: {path.name} is missing.")
        if expected_digest and weights_digest(weights_path) != expected_digest:
            raise RsError(f"{weights_path} does not match the digest in rs_meta.json; the folder was altered.")
        retrain = "Copy the complete folder again, or re-train it with `rs finetune --base tfidf`."
        try:
            stored = json.loads(vocabulary_path.read_text(encoding="utf-8"))
            weights = load_file(str(weights_path))
            settings = TfidfSettings(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in stored["settings"].items()}
            )
            vocabularies = {"char": stored["char"], "word": stored["word"]}
            char_idf, word_idf, coef, intercept = (weights[k] for k in ("char_idf", "word_idf", "coef", "intercept"))
        except KeyError as error:
            raise RsError(f"{folder}: the TF-IDF model lacks {error}; the folder is damaged. {retrain}") from None
        except (json.JSONDecodeError, TypeError, OSError, ValueError, SafetensorError) as error:
            raise RsError(f"Cannot read the TF-IDF model in {folder}: {error}. {retrain}") from None
        if stored.get("labels") != expected_labels:
            raise RsError(
                f"{folder}: the TF-IDF model has labels {stored.get('labels')}, rs_meta.json {expected_labels}."
            )
        if not all(_is_ngram_range(r) for r in (settings.char_ngrams, settings.word_ngrams)):
            raise RsError(f"{vocabulary_path}: the n-gram settings are not (shortest, longest) pairs. {retrain}")
        n_char, n_word = len(vocabularies["char"]), len(vocabularies["word"])
        rows = 1 if len(expected_labels) == 2 else len(expected_labels)
        shapes_ok = (
            char_idf.shape == (n_char,)
            and word_idf.shape == (n_word,)
            and coef.shape == (rows, n_char + n_word)
            and intercept.shape == (rows,)
        )
        if not shapes_ok:
            raise RsError(f"{folder}: the TF-IDF weights do not match its vocabularies and labels.")
        try:  # scikit-learn checks the vocabularies (indices 0..n-1, each once) when idf_ is set
            char, word = _vectorizers(settings, vocabularies)
            char.idf_, word.idf_ = char_idf, word_idf
        except (TypeError, ValueError) as error:
            raise RsError(
                f"{vocabulary_path}: the vocabularies are damaged ({str(error).rstrip('.')}). {retrain}"
            ) from None
        return cls(expected_labels, settings, char, word, coef, intercept)


def _is_ngram_range(value) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and 1 <= value[0] <= value[1]
    )


def _stack(char_features, word_features):
    from scipy.sparse import hstack

    return hstack([char_features, word_features]).tocsr()


def weights_digest(path: Path) -> str:
    """The weights' digest as rs_meta.json stores it (weights_sha256): "sha256:" and the hex digest."""
    return "sha256:" + file_digest(path)
