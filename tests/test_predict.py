import numpy as np
import pandas as pd
import pytest

from review_sentiment.errors import RsError
from review_sentiment.modelstore import newest_model_dir
from review_sentiment.predict import Predictor, predict_file
from review_sentiment.preprocess import preprocess_file

pytestmark = pytest.mark.slow


def test_output_keeps_every_row_and_column(tmp_path, tiny_model, sample_table):
    from tests.conftest import SAMPLE

    summary = predict_file(SAMPLE, tmp_path / "labeled.csv", model_dir=tiny_model)
    out = pd.read_csv(tmp_path / "labeled.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    added = ["predicted_label", "confidence", "prob_negative", "prob_neutral", "prob_positive"]
    assert out.columns.tolist() == sample_table.columns.tolist() + added
    assert out[sample_table.columns].equals(sample_table)  # ground-truth label column untouched, same order
    assert set(out["predicted_label"]) <= {"negative", "neutral", "positive"}
    probabilities = out[added[2:]].astype(float).to_numpy()
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
            ]
        }
    )
    raw.to_csv(tmp_path / "raw.csv", index=False)
    preprocess_file(tmp_path / "raw.csv", tmp_path / "processed.csv", processed_dir=tmp_path)
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
    assert summary.unscored_empty == 2 and summary.scored == 2


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


def test_batching_does_not_change_results(tiny_model, sample_table):
    texts = sample_table["review"].tolist()[:50]
    one = Predictor(tiny_model, batch_size=1).probabilities(texts)
    many = Predictor(tiny_model, batch_size=16).probabilities(texts)
    assert np.allclose(one, many, atol=1e-5)


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
    assert streamed.label_counts == whole.label_counts and streamed.unscored_empty == whole.unscored_empty == 2
    assert streamed.truncated == whole.truncated == 1


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
    int8 = predict_file(SAMPLE, tmp_path / "int8.csv", model_dir=tiny_model, precision="int8")
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    a, b = (pd.read_csv(tmp_path / f"{name}.csv")["predicted_label"] for name in ("fp32", "int8"))
    assert (a == b).mean() >= 0.97


def test_a_file_with_a_header_and_no_rows(tmp_path, tiny_model):
    (tmp_path / "in.csv").write_text("review,n\n", encoding="utf-8")
    summary = predict_file(tmp_path / "in.csv", tmp_path / "out.csv", model_dir=tiny_model)
    assert (summary.rows, summary.scored, summary.chunks) == (0, 0, 1)
    header = (tmp_path / "out.csv").read_text(encoding="utf-8-sig").strip()
    assert header == "review,n,predicted_label,confidence,prob_negative,prob_neutral,prob_positive"
