"""rs info: the versions and hardware a bug report needs."""

from __future__ import annotations

import platform

from review_sentiment import __version__
from review_sentiment.modelstore import library_versions


def environment_info() -> dict[str, str]:
    """rs, Python, library versions, platform and what torch sees (CUDA devices, CPU threads)."""
    info = {"rs": __version__, **library_versions(), "platform": platform.platform()}
    try:
        import torch

        info["cuda"] = (
            f"available: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
            if torch.cuda.is_available()
            else "not available"
        )
        info["torch threads"] = str(torch.get_num_threads())
    except ImportError:
        info["cuda"] = "torch not installed"
    return info
