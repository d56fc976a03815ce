import os

import pytest

from review_sentiment.io import AtomicPath, write_bytes_atomically


def test_file_digest_works_without_hashlib_file_digest(tmp_path, monkeypatch):
    import hashlib

    from review_sentiment.io import file_digest

    data = tmp_path / "reviews.csv"
    data.write_bytes("review\n배송 빨라요\n".encode() * 50_000)  # several 1 MiB blocks
    expected = hashlib.sha256(data.read_bytes()).hexdigest()
    monkeypatch.delattr(hashlib, "file_digest", raising=False)  # as on Python 3.10, which pyproject allows
    assert file_digest(data) == expected


@pytest.mark.parametrize("directory", [False, True])
def test_an_atomic_path_replaces_the_target_only_when_complete(tmp_path, directory):
    target = tmp_path / "out"
    (target.mkdir() if directory else target.write_text("old"))
    with pytest.raises(KeyboardInterrupt), AtomicPath(target, directory=directory) as temporary:
        (temporary / "part" if directory else temporary).write_text("half")
        raise KeyboardInterrupt
    assert [path.name for path in tmp_path.iterdir()] == ["out"]  # the temporary one is gone
    with AtomicPath(target, directory=directory) as temporary:
        (temporary / "part" if directory else temporary).write_text("new")
    assert (target / "part" if directory else target).read_text() == "new"
    assert [path.name for path in tmp_path.iterdir()] == ["out"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == (0o777 if directory else 0o666) & ~mask  # not mkstemp's 0o600


def test_bytes_written_atomically(tmp_path):
    write_bytes_atomically(tmp_path / "state.json", b"{}")
    assert (tmp_path / "state.json").read_bytes() == b"{}"
    assert [path.name for path in tmp_path.iterdir()] == ["state.json"]
