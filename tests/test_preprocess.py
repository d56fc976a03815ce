import json

import pandas as pd
import pytest

from review_sentiment.errors import RsError
from review_sentiment.io import latest_processed_file, read_sidecar
from review_sentiment.normalize import NormalizationRecipe
from review_sentiment.preprocess import preprocess_file


def _write(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_keeps_rows_and_columns_and_flags(tmp_path):
    source = _write(
        tmp_path / "in.csv",
        {
            "id": ["1", "2", "3", "4", "5"],
            "내용": ["배송 빨라요ㅋㅋㅋㅋ", "", "good 👍", "배송 빨라요ㅋㅋ", "별로예요"],
            "extra": ["a", "b", "c", "d", "e"],
        },
    )
    summary = preprocess_file(source, tmp_path / "out.csv", processed_dir=tmp_path / "processed")
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out.columns.tolist() == [
        "id",
        "내용",
        "extra",
        "text_normalized",
        "flag_empty",
        "flag_no_hangul",
        "flag_duplicate",
    ]
    assert out["id"].tolist() == ["1", "2", "3", "4", "5"]
    assert out["text_normalized"].tolist() == [
        "배송 빨라요ㅋㅋ",
        "",
        "good 👍",
        "배송 빨라요ㅋㅋ",
        "별로예요",
    ]
    assert out["flag_empty"].tolist() == ["False", "True", "False", "False", "False"]
    assert out["flag_no_hangul"].tolist() == ["False", "False", "True", "False", "False"]
    assert out["flag_duplicate"].tolist() == ["False", "False", "False", "True", "False"]
    assert summary.text_column == "내용"
    assert summary.flagged == {"empty": 1, "no_hangul": 1, "duplicate": 1}
    assert summary.rows_out == 5 and summary.dropped == {}


def test_drops_only_when_asked(tmp_path):
    source = _write(tmp_path / "in.csv", {"review": ["좋아요", "", "좋아요", "별로"]})
    summary = preprocess_file(
        source,
        tmp_path / "out.csv",
        drop_empty=True,
        drop_duplicates=True,
        processed_dir=tmp_path / "processed",
    )
    assert summary.dropped == {"empty": 1, "duplicate": 1}
    assert pd.read_csv(tmp_path / "out.csv")["review"].tolist() == ["좋아요", "별로"]


def test_default_output_sidecar_and_latest_pointer(tmp_path):
    source = _write(tmp_path / "shop.csv", {"review": ["좋아요"], "label": ["긍정"]})
    recipe = NormalizationRecipe(spacing=True)
    summary = preprocess_file(source, recipe=recipe, processed_dir=tmp_path / "processed")
    output = tmp_path / "processed" / "shop.csv"
    assert summary.output_path == str(output)
    assert read_sidecar(output)["recipe"] == recipe.to_dict()
    assert latest_processed_file(tmp_path / "processed") == output.resolve()
    assert json.loads((tmp_path / "processed" / "latest.json").read_text())["path"] == str(output.resolve())


def test_existing_normalized_column_is_not_overwritten(tmp_path):
    source = _write(tmp_path / "in.csv", {"review": ["좋아요!!!!"], "text_normalized": ["mine"]})
    summary = preprocess_file(source, tmp_path / "out.csv", processed_dir=tmp_path / "p")
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["text_normalized"].tolist() == ["mine"]
    assert out["text_normalized_rs"].tolist() == ["좋아요!!"]
    assert summary.normalized_column == "text_normalized_rs"


def test_refuses_to_overwrite_input(tmp_path):
    source = _write(tmp_path / "in.csv", {"review": ["좋아요"]})
    with pytest.raises(RsError, match="never overwrites its input"):
        preprocess_file(source, source, processed_dir=tmp_path / "p")


def test_no_latest_file_explains_what_to_do(tmp_path):
    with pytest.raises(RsError, match="rs preprocess reviews.csv"):
        latest_processed_file(tmp_path)


def test_streamed_preprocessing_is_identical_to_one_chunk(tmp_path):
    reviews = ["좋아요!!!!!", "", "좋아요!!!!!", "굿", "  ", "별로.다신 안 사요", "good", "굿", "최고ㅋㅋㅋㅋ"] * 3
    pd.DataFrame({"review": reviews, "n": range(len(reviews))}).to_csv(tmp_path / "in.csv", index=False)
    summaries = {}
    for name, chunk_rows in (("streamed", 2), ("whole", 10**9)):
        summaries[name] = preprocess_file(
            tmp_path / "in.csv", tmp_path / f"{name}.csv", processed_dir=tmp_path, chunk_rows=chunk_rows,
            drop_duplicates=True,
        )  # fmt: skip
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    streamed, whole = summaries["streamed"], summaries["whole"]
    assert streamed.flagged == whole.flagged == {"empty": 6, "no_hangul": 3, "duplicate": 16}
    assert streamed.dropped == whole.dropped == {"duplicate": 16}
    assert streamed.rows_out == whole.rows_out == 27 - 16
    assert (streamed.changed_rows, streamed.mean_length) == (whole.changed_rows, whole.mean_length)


def test_a_file_with_a_header_and_no_rows(tmp_path):
    (tmp_path / "in.csv").write_text("review,n\n", encoding="utf-8")
    summary = preprocess_file(tmp_path / "in.csv", tmp_path / "out.csv", processed_dir=tmp_path, drop_empty=True)
    assert (summary.rows_in, summary.rows_out, summary.dropped) == (0, 0, {"empty": 0})
    header = (tmp_path / "out.csv").read_text(encoding="utf-8-sig").strip()
    assert header == "review,n,text_normalized,flag_empty,flag_no_hangul,flag_duplicate"
