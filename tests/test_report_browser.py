"""The report page in a real headless browser (Debian's chromium): Korean shows as glyphs, not boxes.

Run it alone with `python -m pytest tests/test_report_browser.py` (`apt-get install chromium` first; CI installs
it). A glyph-less font draws every Hangul syllable as the same box, so two pages that differ only in their
syllables give identical screenshots; with glyphs they differ.
"""

import shutil
import subprocess

import pytest

from review_sentiment.report import render_html

CI_NEEDS_IT = "chromium is not installed (apt-get install chromium); .ci/run installs it"


def chromium() -> str:
    import os

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(CI_NEEDS_IT)
        pytest.skip(CI_NEEDS_IT)
    return found


def screenshot(html_path, png_path, size="900,400") -> bytes:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={size}",
        f"--screenshot={png_path}",
        html_path.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return png_path.read_bytes()


@pytest.mark.slow
def test_korean_renders_as_glyphs_in_chromium(tmp_path):
    shots = []
    for index, syllables in enumerate(["가나다라마바사", "감성분석리포트"]):
        page = tmp_path / f"page{index}.html"
        page.write_text(render_html(syllables, "", [("s", syllables, f"<p style='font-size:48px'>{syllables}</p>")]))
        shots.append(screenshot(page, tmp_path / f"page{index}.png"))
    assert shots[0] != shots[1]


@pytest.mark.slow
def test_the_report_renders_in_chromium(tmp_path):
    from PIL import Image

    from review_sentiment.finetune import finetune
    from tests.conftest import SAMPLE, labeled_by_rs_predict

    model = finetune(SAMPLE, "tfidf", output_dir=tmp_path / "tfidf").output_dir
    labeled_by_rs_predict(SAMPLE, model, tmp_path / "labeled.csv")
    from review_sentiment.report import report_file

    report_file(tmp_path / "labeled.csv", tmp_path / "report.html")
    screenshot(tmp_path / "report.html", tmp_path / "report.png", size="1200,1600")
    image = Image.open(tmp_path / "report.png")
    assert image.size == (1200, 1600) and len(set(image.convert("L").getdata())) > 16  # more than a blank page
