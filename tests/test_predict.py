import os
import re

import numpy as np
import pandas as pd
import pytest

from review_sentiment.errors import Interrupted, RsError
from review_sentiment.inference import batched_probabilities
from review_sentiment.modelstore import newest_model_dir
from review_sentiment.options import ReadOptions, ScoringOptions
from review_sentiment.predict import ResumeStore, predict_file
from review_sentiment.preprocess import preprocess_file
from review_sentiment.scoring import EMPTY_TEXT, NOTHING_LEFT, Predictor

pytestmark = pytest.mark.slow


def test_output_keeps_every_row_and_column(tmp_path, tiny_model, sample_table):
    from tests.conftest import SAMPLE

    summary = predict_file(SAMPLE, tmp_path / "labeled.csv", model_dir=tiny_model)
    out = pd.read_csv(tmp_path / "labeled.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    added = ["predicted_label", "confidence", "prob_negative", "prob_neutral", "prob_positive", "note"]
    assert out.columns.tolist() == sample_table.columns.tolist() + added
    assert out[sample_table.columns].equals(sample_table)  # ground-truth label column untouched, same order
    assert set(out["predicted_label"]) <= {"negative", "neutral", "positive"}
    assert set(out["note"]) == {""}
    probabilities = out[added[2:5]].astype(float).to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    assert np.allclose(out["confidence"].astype(float), probabilities.max(axis=1), atol=1e-4)
    assert summary.rows == summary.scored == 360
    assert sum(summary.label_counts.values()) == 360


def test_raw_and_processed_twin_get_the_same_labels(tmp_path, tiny_model):
    raw = pd.DataFrame(
        {
            "review": [
                "배송이 빨라요ㅋㅋㅋㅋㅋ",
                "&lt;3 최고예요!!!!!",
                "별로예요.다신 안 사요",
                "그냥 그래요 https://example.com/x",
                "\u1107\u1162\u11bc\u1109\u1169\u11bc 좋아요",
                "-별로예요 =_= 다신 안 사요",  # escaped in the processed CSV, unescaped when read back
                "@판매자님 최고예요",
            ]
        }
    )
    raw.to_csv(tmp_path / "raw.csv", index=False)
    summary = preprocess_file(tmp_path / "raw.csv", tmp_path / "processed.csv", processed_dir=tmp_path)
    assert summary.formulas_escaped
    predict_file(tmp_path / "raw.csv", tmp_path / "a.csv", model_dir=tiny_model)
    predict_file(tmp_path / "processed.csv", tmp_path / "b.csv", model_dir=tiny_model)
    columns = ["predicted_label", "confidence", "prob_negative", "prob_neutral", "prob_positive"]
    assert pd.read_csv(tmp_path / "a.csv")[columns].equals(pd.read_csv(tmp_path / "b.csv")[columns])


def test_empty_texts_get_no_label(tmp_path, tiny_model):
    pd.DataFrame({"review": ["좋아요", "", "   ", "별로"], "n": [1, 2, 3, 4]}).to_csv(tmp_path / "in.csv", index=False)
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert out["n"].tolist() == [1, 2, 3, 4]
    assert out["predicted_label"].tolist()[1:3] == ["", ""]
    assert all(label for label in out["predicted_label"].tolist()[::3])
    assert summary.unscored == 2 and summary.scored == 2


def test_existing_prediction_columns_are_not_overwritten(tmp_path, tiny_model):
    pd.DataFrame({"review": ["좋아요"], "predicted_label": ["mine"]}).to_csv(tmp_path / "in.csv", index=False)
    predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["predicted_label"].tolist() == ["mine"]
    assert out["predicted_label_rs"].tolist()[0] in {"negative", "neutral", "positive"}


def test_never_overwrites_the_input(tmp_path, tiny_model):
    pd.DataFrame({"review": ["좋아요"]}).to_csv(tmp_path / "in.csv", index=False)
    before = (tmp_path / "in.csv").read_bytes()
    with pytest.raises(RsError, match="never overwrites"):
        predict_file(tmp_path / "in.csv", tmp_path / "in.csv", model_dir=tiny_model)
    assert (tmp_path / "in.csv").read_bytes() == before


def test_transformers_pipeline_loads_the_folder(tiny_model, sample_table):
    from transformers import pipeline

    predictor = Predictor(tiny_model)
    texts = predictor.normalizer.normalize(sample_table["review"].tolist()[:20])
    classify = pipeline("text-classification", model=str(tiny_model), device="cpu")
    assert [r["label"] for r in classify(texts)] == predictor.predict(texts)


def test_newest_model_is_the_default(tmp_path, tiny_model):
    import shutil
    import time

    shutil.copytree(tiny_model, tmp_path / "older")
    (tmp_path / "not-a-model").mkdir()
    time.sleep(0.05)
    shutil.copytree(tiny_model, tmp_path / "newer")
    (tmp_path / "newer" / "rs_meta.json").touch()
    assert newest_model_dir(tmp_path) == tmp_path / "newer"
    with pytest.raises(RsError, match="rs finetune"):
        newest_model_dir(tmp_path / "not-a-model")


def _awkward_reviews(sample_table) -> pd.DataFrame:
    """The sample plus rows a real export has: empty, whitespace-only, NFD, very long, repeated."""
    extra = ["", "   ", "\u1107\u1162\u11bc\u1109\u1169\u11bc 좋아요", "정말 " * 400 + "최고", "굿굿", "굿굿"]
    reviews = sample_table["review"].tolist() + extra
    return pd.DataFrame({"id": range(len(reviews)), "review": reviews})


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_streamed_output_is_identical_to_one_chunk(tmp_path, tiny_model, sample_table, suffix):
    _awkward_reviews(sample_table).to_csv(tmp_path / "in.csv", index=False)
    streamed = predict_file(tmp_path / "in.csv", tmp_path / f"streamed{suffix}", model_dir=tiny_model, chunk_rows=7)
    whole = predict_file(tmp_path / "in.csv", tmp_path / f"whole{suffix}", model_dir=tiny_model, chunk_rows=10**9)
    assert (streamed.chunks, whole.chunks) == (53, 1)
    assert (tmp_path / f"streamed{suffix}").read_bytes() == (tmp_path / f"whole{suffix}").read_bytes()
    assert streamed.label_counts == whole.label_counts and streamed.unscored == whole.unscored == 2
    assert streamed.split == whole.split == 1


def test_streamed_output_matches_in_memory_prediction(tmp_path, tiny_model, sample_table):
    table = _awkward_reviews(sample_table)
    table.to_csv(tmp_path / "in.csv", index=False)
    predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model, chunk_rows=10)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    predictor = Predictor(tiny_model)
    probabilities = predictor.probabilities(table["review"].tolist())
    assert out["id"].tolist() == [str(i) for i in range(len(table))]
    assert out["predicted_label"].tolist() == predictor.predict(table["review"].tolist())
    scored = ~np.isnan(probabilities).any(axis=1)
    written = out.loc[scored, ["prob_negative", "prob_neutral", "prob_positive"]].astype(float).to_numpy()
    assert np.allclose(written, probabilities[scored], atol=1e-4)


def test_quantized_prediction_agrees_with_fp32(tmp_path, tiny_model):
    from tests.conftest import SAMPLE

    fp32 = predict_file(SAMPLE, tmp_path / "fp32.csv", model_dir=tiny_model)
    int8 = predict_file(SAMPLE, tmp_path / "int8.csv", model_dir=tiny_model, scoring=ScoringOptions(precision="int8"))
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    a, b = (pd.read_csv(tmp_path / f"{name}.csv")["predicted_label"] for name in ("fp32", "int8"))
    assert (a == b).mean() >= 0.97


def test_a_file_with_a_header_and_no_rows(tmp_path, tiny_model):
    (tmp_path / "in.csv").write_text("review,n\n", encoding="utf-8")
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    assert (summary.rows, summary.scored, summary.chunks) == (0, 0, 1)
    header = (tmp_path / "out.csv").read_text(encoding="utf-8-sig").strip()
    assert header == "review,n,predicted_label,confidence,prob_negative,prob_neutral,prob_positive,note"


def test_long_review_is_scored_in_parts_with_length_weights(tmp_path, tiny_model, sample_table):
    reviews = sample_table["review"].tolist()
    long_review = " ".join(reviews[:200]) * 60  # ~200,000 characters of real sentences
    assert len(long_review) > 150_000
    predictor = Predictor(tiny_model)
    prepared = predictor.prepare([long_review, reviews[0]])
    encoded = prepared.encoded
    parts = encoded.parts[0]
    assert parts > 100 and encoded.parts[1] == 1 and prepared.split == 1
    assert prepared.notes == [f"long text: scored in {parts} parts", ""]
    classifier = predictor.classifier
    assert all(len(ids) <= classifier.max_length for ids in encoded.ids)
    assert sum(encoded.weights[:parts]) == len(
        classifier.tokenizer(predictor.normalizer.normalize([long_review])[0], add_special_tokens=False)["input_ids"]
    )
    combined = predictor.score(prepared, calibrated=False)  # the temperature applies to the combined row
    pieces = batched_probabilities(classifier.model, encoded.ids, classifier.tokenizer.pad_token_id)
    weights = np.asarray(encoded.weights[:parts], dtype=np.float64)
    expected = (pieces[:parts] * weights[:, None]).sum(axis=0) / weights.sum()
    assert np.allclose(combined[0], expected, atol=1e-6)
    assert np.array_equal(combined[1], pieces[parts])  # an unsplit review keeps its own numbers exactly

    pd.DataFrame({"review": [long_review, "좋아요"]}).to_csv(tmp_path / "in.csv", index=False)
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert summary.split == 1 and summary.scored == 2
    assert out["note"].tolist() == [f"long text: scored in {parts} parts", ""]
    assert out["review"][0] == long_review


def test_rows_without_text_get_a_reason(tmp_path, tiny_model):
    texts = ["", "   ", "https://example.com/item/1", "\u200b\x07", "좋아요"]
    pd.DataFrame({"review": texts}).to_csv(tmp_path / "in.csv", index=False)
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert out["predicted_label"].tolist()[:4] == ["", "", "", ""] and out["predicted_label"][4]
    assert out["note"].tolist() == [EMPTY_TEXT, EMPTY_TEXT, NOTHING_LEFT, NOTHING_LEFT, ""]
    assert out["confidence"].tolist()[:4] == [""] * 4  # no guess
    assert summary.unscored == 4 and summary.scored == 1


def _interrupt_after(chunks: int):
    def on_chunk_done(done: int) -> None:
        if done == chunks:
            raise KeyboardInterrupt

    return on_chunk_done


def test_resume_after_interruption_gives_the_same_output(tmp_path, tiny_model, sample_table):
    _awkward_reviews(sample_table).to_csv(tmp_path / "in.csv", index=False)
    whole = tmp_path / "whole.csv"
    predict_file(tmp_path / "in.csv", whole, model_dir=tiny_model, chunk_rows=50)
    output = tmp_path / "resumed.csv"
    with pytest.raises(Interrupted, match="--resume") as interrupted:
        predict_file(
            tmp_path / "in.csv", output, model_dir=tiny_model, chunk_rows=50, on_chunk_done=_interrupt_after(3)
        )
    assert "150 of 366 rows were labeled" in str(interrupted.value)
    assert not output.exists() and ResumeStore(output).finished() == 3
    with pytest.raises(RsError, match="--resume"):  # never thrown away silently
        predict_file(tmp_path / "in.csv", output, model_dir=tiny_model, chunk_rows=50)
    with pytest.raises(RsError, match="--chunk-size"):
        predict_file(tmp_path / "in.csv", output, model_dir=tiny_model, chunk_rows=40, resume=True)

    # A second interruption while resuming, then the rest.
    with pytest.raises(Interrupted):
        predict_file(
            tmp_path / "in.csv",
            output,
            model_dir=tiny_model,
            chunk_rows=50,
            resume=True,
            on_chunk_done=_interrupt_after(5),
        )
    summary = predict_file(tmp_path / "in.csv", output, model_dir=tiny_model, chunk_rows=50, resume=True)
    assert summary.resumed_chunks == 5 and summary.chunks == 8
    assert 0 < summary.scored_now <= 366 - 5 * 50 < summary.scored  # reviews/s counts only this run's rows
    assert output.read_bytes() == whole.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "resumed.csv", "whole.csv"]  # nothing left over


def test_resume_refuses_a_changed_input(tmp_path, tiny_model, sample_table):
    sample_table.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(Interrupted):
        predict_file(
            tmp_path / "in.csv",
            tmp_path / "out.csv",
            model_dir=tiny_model,
            chunk_rows=100,
            on_chunk_done=_interrupt_after(1),
        )
    sample_table.iloc[::-1].to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(RsError, match="input file"):
        predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model, chunk_rows=100, resume=True)


def test_resume_without_an_interrupted_run_starts_afresh(tmp_path, tiny_model, sample_table):
    sample_table.head(20).to_csv(tmp_path / "in.csv", index=False)
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model, resume=True)
    assert summary.resumed_chunks == 0 and summary.scored == 20
    # a run that died before its first chunk was kept leaves nothing worth resuming: no --resume needed
    ResumeStore(tmp_path / "out.csv").folder.mkdir()
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    assert summary.scored == 20 and not ResumeStore(tmp_path / "out.csv").folder.exists()


def test_one_output_row_per_input_row_in_order(tmp_path, tiny_model):
    """For any texts at all (empty, whitespace, control characters, lone surrogates, long): exactly one output
    row per input row, in order, with the text kept (lone surrogates, which UTF-8 cannot hold, become U+FFFD)."""
    import json

    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    from review_sentiment.io import read_table

    any_character = st.characters(codec=None, categories=None)
    texts = st.lists(
        st.one_of(st.text(any_character, max_size=40), st.sampled_from(["", " ", "\r", "\r\n", "=1+1", "\x00"])),
        min_size=1,
    )

    # RS_PROPERTY_EXAMPLES=400 for a deeper search (about 30 s) than the suite's 25 examples
    @settings(
        max_examples=int(os.environ.get("RS_PROPERTY_EXAMPLES", 25)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(texts)
    @example(["\r"])  # a lone CR in a CSV field was once read back as two rows
    @example(["\ud800", "", "a\rb\nc"])
    def check(texts):
        lines = [json.dumps({"id": i, "review": text}) for i, text in enumerate(texts)]
        (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        expected = [re.sub("[\ud800-\udfff]", "\ufffd", text) for text in texts]
        for suffix in (".jsonl", ".csv"):
            output = tmp_path / f"out{suffix}"
            summary = predict_file(tmp_path / "in.jsonl", output, model_dir=tiny_model, chunk_rows=7)
            out = read_table(output, unescape_formulas=True)
            assert out["id"].tolist() == [str(i) for i in range(len(texts))]
            assert out["review"].tolist() == expected
            assert summary.rows == len(texts) == summary.scored + summary.unscored

    check()


def test_a_repeated_trained_on_column_is_not_guessed(tmp_path, tiny_model):
    (tmp_path / "dup.csv").write_text("id,review,review\n1,좋아요,별로\n", encoding="utf-8")
    with pytest.raises(RsError, match=r"several 'review' columns \(\['review', 'review.1'\]\).*--text-col"):
        predict_file(tmp_path / "dup.csv", tmp_path / "out.csv", model_dir=tiny_model)
    summary = predict_file(
        tmp_path / "dup.csv", tmp_path / "out.csv", model_dir=tiny_model, reading=ReadOptions(text_col="review.1")
    )
    assert summary.text_column == "review.1"


def test_the_default_output_keeps_the_input_format():
    from pathlib import Path

    from review_sentiment.predict import default_output_path

    cases = {"a/reviews.csv": "a/reviews.labeled.csv", "R.CSV": "R.labeled.csv", "r.csv.gz": "r.labeled.csv"}
    cases |= {"r.xlsx": "r.labeled.xlsx", "r.txt": "r.labeled.csv", "r.parquet": "r.labeled.parquet"}
    assert {name: str(default_output_path(Path(name))) for name in cases} == cases


def test_a_repeated_header_row_gets_no_label_and_says_why(tmp_path, tiny_model):
    from review_sentiment.batch import REPEATED_HEADER

    (tmp_path / "in.csv").write_text("id,review\n1,좋아요\nid,review\n2,별로예요\n", encoding="utf-8")
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert out["id"].tolist() == ["1", "id", "2"] and summary.rows == 3
    assert out["predicted_label"][1] == "" and out["note"][1] == REPEATED_HEADER
    assert out["predicted_label"][0] and out["predicted_label"][2]


def test_resume_refuses_another_normalization_of_a_checkpoint(tmp_path, checkpoints, sample_table):
    sample_table.to_csv(tmp_path / "in.csv", index=False)
    run = {"model_dir": checkpoints["korean"], "chunk_rows": 100}
    with pytest.raises(Interrupted):
        predict_file(tmp_path / "in.csv", tmp_path / "out.csv", on_chunk_done=_interrupt_after(1), **run)
    with pytest.raises(RsError, match=r"--normalization \(rs there, none now\)"):
        predict_file(
            tmp_path / "in.csv", tmp_path / "out.csv", resume=True, scoring=ScoringOptions(normalization="none"), **run
        )
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", resume=True, **run)
    assert summary.resumed_chunks == 1 and summary.scored == len(sample_table)
