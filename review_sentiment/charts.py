"""Charts as PNG files, with Korean text that renders (matplotlib's own fonts have no Hangul and draw boxes)."""

from __future__ import annotations

import warnings

# One colour per sentiment everywhere: the charts and the report page.
SENTIMENT_COLOURS = {"negative": "#d6604d", "neutral": "#bababa", "positive": "#4393c3"}


def korean_pyplot():
    """matplotlib.pyplot drawing to files only, with NanumGothic (koreanize-matplotlib) as its font."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # it still uses distutils' LooseVersion, which warns
        warnings.simplefilter("ignore", DeprecationWarning)
        import koreanize_matplotlib  # noqa: F401

    return plt
