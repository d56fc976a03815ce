import time

import pytest

from review_sentiment.bases import BASE_ALIASES, load_base_tokenizer_and_config, resolve_base
from review_sentiment.errors import RsError


def test_aliases_pin_repository_and_revision():
    base = resolve_base("kcelectra-v2021")
    assert (base.source, base.revision, base.is_local) == ("beomi/KcELECTRA-base", "v2021", False)
    assert resolve_base("KcELECTRA").source == "beomi/KcELECTRA-base-v2022"
    assert BASE_ALIASES["kcbert"].max_positions == 300


def test_local_folder_is_used_as_is(tiny_base):
    base = resolve_base(str(tiny_base))
    assert base.is_local and base.revision is None
    tokenizer, config = load_base_tokenizer_and_config(base)
    assert config.model_type == "electra"
    pieces = tokenizer.tokenize("배송이 빨라요")
    # Cased, no accent stripping: syllables stay whole instead of decomposing into jamo.
    assert "".join(piece.removeprefix("##") for piece in pieces) == "배송이빨라요"
    assert tokenizer.unk_token not in pieces


def test_missing_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RsError, match="does not exist"):
        resolve_base(str(tmp_path / "no-such-model"))
    with pytest.raises(RsError, match="does not exist"):
        resolve_base("./KcELECTRA-base-v2022")
    with pytest.raises(RsError, match="does not exist.*kcelectra-v2021.*tfidf"):
        resolve_base("kcelectra-v2099")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(RsError, match="is a file"):
        resolve_base(str(tmp_path / "weights.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RsError, match="no config.json"):
        resolve_base(str(tmp_path / "empty"))


@pytest.mark.parametrize("alias", ["kcelectra", "koelectra-small"])
def test_offline_alias_fails_fast_with_download_instructions(monkeypatch, alias):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(RsError) as error:
        load_base_tokenizer_and_config(resolve_base(alias))
    assert time.perf_counter() - started < 20  # no minute of retries
    message = str(error.value)
    assert BASE_ALIASES[alias].repo_id in message
    assert "hf download" in message and "--base ./" in message and "--base tfidf" in message


def test_unreachable_hub_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # closed port: refused at once
    with pytest.raises(RsError, match="unreachable"):
        load_base_tokenizer_and_config(resolve_base("koelectra"))


def test_a_hub_id_is_told_from_a_missing_folder(tmp_path, monkeypatch):
    from review_sentiment.bases import is_hub_id

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert is_hub_id("daekeun-ml/koelectra-small-v3-nsmc") and is_hub_id("beomi/KcELECTRA-base-v2022")
    for path in ("./owner/name", "/owner/name", "~/name", "models/nope", "a/b/c", "name", "a\\b"):
        assert not is_hub_id(path), path
