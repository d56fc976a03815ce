"""Checkpoints from the hub or a folder: base aliases with pinned revisions, local folders, hub ids (for --base, and
for --model a checkpoint rs did not train), and a fast clear failure when offline."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from review_sentiment.errors import RsError

T = TypeVar("T")


@dataclass(frozen=True)
class BaseAlias:
    repo_id: str
    revision: str
    description: str
    vocab_size: int | None = None
    max_positions: int | None = None


BASE_ALIASES = {
    "kcelectra": BaseAlias(
        "beomi/KcELECTRA-base-v2022",
        "main",
        "KcELECTRA base, 2022 vocabulary (news comments; slang and emoji)",
        54343,
    ),
    "kcelectra-v2021": BaseAlias("beomi/KcELECTRA-base", "v2021", "KcELECTRA base, 2021 release", 50135),
    "koelectra": BaseAlias(
        "monologg/koelectra-base-v3-discriminator",
        "main",
        "KoELECTRA v3 base discriminator (news, wiki, web)",
        35000,
    ),
    "koelectra-small": BaseAlias(
        "monologg/koelectra-small-v3-discriminator",
        "main",
        "KoELECTRA v3 small discriminator: fast on CPU",
        35000,
    ),
    "kcbert": BaseAlias("beomi/kcbert-base", "main", "KcBERT base (300 positions)", 30000, 300),
}


@dataclass(frozen=True)
class ResolvedBase:
    """Where a base checkpoint comes from: a local folder, or a hub repository at a revision."""

    name: str  # what the user passed
    source: str  # local folder path or hub repo id
    revision: str | None
    is_local: bool
    alias: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "revision": self.revision,
            "is_local": self.is_local,
            "alias": self.alias,
        }


def resolve_base(name: str, revision: str | None = None) -> ResolvedBase:
    """Turn --base (alias, local folder or hub id) into a ResolvedBase; a missing local folder is an error."""
    alias = BASE_ALIASES.get(name.lower())
    if alias is not None:
        return ResolvedBase(name, alias.repo_id, revision or alias.revision, False, name.lower())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise RsError(f"{path} has no config.json: it is not a Hugging Face checkpoint folder.")
        return ResolvedBase(name, str(path), None, True)
    aliases = ", ".join(BASE_ALIASES)
    if path.exists():
        raise RsError(f"--base {name}: {path} is a file, not a checkpoint folder (the folder holds config.json).")
    if not is_hub_id(name):
        raise RsError(
            f"--base {name}: the folder {path} does not exist. Pass the folder of a downloaded checkpoint, an alias "
            f"({aliases}), tfidf, or a hub id such as beomi/KcELECTRA-base-v2022."
        )
    return ResolvedBase(name, name, revision or "main", False)


def is_hub_id(name: str) -> bool:
    """Whether `name`, which names no file or folder here, is a hub repository id rather than a folder that is
    missing: models/my-base (a folder here that holds folders) is a path; beomi/KcELECTRA-base-v2022 is a hub id,
    and so are --base and --model values of that form."""
    path = Path(name).expanduser()
    return not (name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or path.parent.is_dir())


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_is_reachable(timeout: float = 5.0) -> bool:
    """A TCP connection to the hub (or the HTTPS proxy) within `timeout` seconds.

    transformers retries an unreachable hub for about a minute before failing; this check takes seconds.
    """
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or hub_endpoint())
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def offline_message(base: ResolvedBase, reason: str) -> str:
    return (
        f"Cannot download the base model {base.source} (revision {base.revision}): {reason}. "
        f"{_download_elsewhere(base.source, base.revision, '--base')} (any local checkpoint folder works, e.g. one "
        "from `rs pretrain`). Or train without a download: --base tfidf."
    )


def checkpoint_offline_message(repo_id: str, revision: str, reason: str) -> str:
    instructions = _download_elsewhere(repo_id, revision, "--model")
    return f"Cannot download the model {repo_id} (revision {revision}): {reason}. {instructions}."


def _download_elsewhere(repo_id: str, revision: str | None, option: str) -> str:
    folder = repo_id.split("/")[-1]
    return (
        f"On a machine with internet run `hf download {repo_id} --revision {revision} --local-dir {folder}`, "
        f"copy the folder here, and pass it with {option} ./{folder}"
    )


def _load(loader, source: str, revision: str | None, local_only: bool):
    kwargs = {"trust_remote_code": False, "local_files_only": local_only}
    if revision:
        kwargs["revision"] = revision
    return loader(source, **kwargs)


def _cached_or_downloaded(load: Callable[[bool], T], source: str, offline: Callable[[str], str]) -> T:
    """`load(local_only)` from the Hugging Face cache, else from the hub; offline or unreachable, a message from
    `offline(reason)` at once instead of transformers' minute of retries."""
    try:
        return load(True)  # already in the Hugging Face cache: no network needed
    except OSError:
        pass
    if hub_is_offline():
        raise RsError(offline("HF_HUB_OFFLINE is set and it is not in the local cache"))
    if not hub_is_reachable():
        raise RsError(offline(f"{hub_endpoint()} is unreachable from this machine"))
    try:
        return load(False)
    except OSError as error:
        raise RsError(f"Downloading {source} failed: {error}") from None


def load_base_tokenizer_and_config(base: ResolvedBase):
    """Load the tokenizer and config of a base: local folder, hub cache, or the hub (failing fast offline)."""
    from transformers import AutoConfig, AutoTokenizer

    def load(local_only: bool):
        config = _load(AutoConfig.from_pretrained, base.source, base.revision, local_only)
        tokenizer = _load(AutoTokenizer.from_pretrained, base.source, base.revision, local_only)
        return tokenizer, config

    if base.is_local:
        try:
            return load(True)
        except (OSError, ValueError) as error:
            raise RsError(f"Cannot load the checkpoint folder {base.source}: {error}") from None
    return _cached_or_downloaded(load, base.source, lambda reason: offline_message(base, reason))


def hub_snapshot(repo_id: str, files: Sequence[str], revision: str | None = None) -> Path:
    """The folder of a hub repository's files in the Hugging Face cache (only those matching the patterns
    `files`), downloaded first when the cache lacks them; offline, a message that says how to bring a copy."""
    from huggingface_hub import snapshot_download

    def load(local_only: bool) -> Path:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=list(files), local_files_only=local_only)
        return Path(folder)

    offline = functools.partial(checkpoint_offline_message, repo_id, revision or "main")
    return _cached_or_downloaded(load, repo_id, offline)


def load_base_weights(base: ResolvedBase, model_class=None, **model_kwargs):
    """Load a base's weights into `model_class` (default: a sequence classifier), after the
    tokenizer/config check has made sure they are cached or reachable."""
    if model_class is None:
        from transformers import AutoModelForSequenceClassification as model_class

    cached_only = base.is_local or hub_is_offline()
    # A base that is itself a classifier with another number of classes (a 3-class model fine-tuned again on
    # two) gets a new head: its shapes differ from the config asked for, and transformers would refuse them.
    # Only the head may differ; a mismatch in the encoder means the folder is damaged.
    kwargs = {
        "trust_remote_code": False,
        "local_files_only": cached_only,
        "ignore_mismatched_sizes": True,
        "output_loading_info": True,
        **model_kwargs,
    }
    if base.revision:
        kwargs["revision"] = base.revision
    try:
        model, loading = model_class.from_pretrained(base.source, **kwargs)
    except OSError as error:
        raise RsError(f"Cannot load the weights of {base.source}: {error}") from None
    prefix = model.base_model_prefix
    encoder = [key for key, *_ in loading.get("mismatched_keys") or () if key.split(".")[0] == prefix]
    if encoder:
        shown = ", ".join(str(key) for key in encoder[:3]) + (
            f" and {len(encoder) - 3} more" if len(encoder) > 3 else ""
        )
        raise RsError(
            f"The weights of {base.source} do not match its config.json ({shown} have other shapes): the folder "
            "mixes files of different models or is damaged. Copy or download it again."
        )
    return model


def expected_vocab_size(base: ResolvedBase) -> int | None:
    alias = BASE_ALIASES.get(base.alias or "")
    return alias.vocab_size if alias else None
