"""Files as rs writes them: atomically (a temporary sibling renamed into place), readable by others, and
compared by content digest."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


class AtomicPath:
    """A temporary file (or, with `directory`, folder) to write in place of `target`, made beside it or in `folder`
    (which must be on the target's file system, for the rename).

    `commit()` gives it the umask's usual permissions and renames it over `target` (a folder replaces the old one);
    `discard()` removes it. As a context manager it yields the temporary path, commits when the block ends normally
    and discards on any exception (Ctrl-C included), so `target` is the old file or the complete new one."""

    def __init__(
        self, target: str | Path, *, directory: bool = False, folder: Path | None = None, suffix: str = ""
    ) -> None:
        self.target, self._directory = Path(target), directory
        prefix, parent = f".{self.target.name}.", folder or self.target.parent
        if directory:
            self.path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
        else:
            handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=parent)
            os.close(handle)
            self.path = Path(name)

    def commit(self) -> None:
        make_shareable(self.path)
        if self._directory:
            if self.target.exists():
                shutil.rmtree(self.target)
            self.path.rename(self.target)
        else:
            os.replace(self.path, self.target)

    def discard(self) -> None:
        if self._directory:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if kind is not None:
            self.discard()
            return
        try:
            self.commit()
        except BaseException:
            self.discard()
            raise


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """`data` as the file `path`, flushed to disk before the rename: after a crash or kill -9 the file is the old
    one or the new one, never a part (predict's resume state relies on it)."""
    with AtomicPath(path, suffix=".part") as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file as hex, read in 1 MiB blocks (hashlib.file_digest needs Python 3.11; rs supports 3.10)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_shareable(path: Path) -> None:
    """Give a file (or a folder and its contents) the umask's usual permissions: mkstemp and mkdtemp make
    them private to their creator, but outputs and models are meant to be read by others."""
    mask = os.umask(0)
    os.umask(mask)
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~mask)


def same_file(first: str | Path, second: str | Path) -> bool:
    """Whether two paths name one file (by the file system when both exist, else by their resolved paths)."""
    first, second = Path(first), Path(second)
    if first.exists() and second.exists():
        return os.path.samefile(first, second)
    return first.resolve() == second.resolve()
