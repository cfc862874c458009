"""The HTML report in a real headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it).

Chromium's ``--enable-logging=stderr`` prints the page's console, uncaught exceptions included,
as ``INFO:CONSOLE`` lines; a control page that throws shows the capture works.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from searched_study import run, searched_storage  # noqa: F401  (the fixture "searched")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it"
)
WINDOW = "1280,5200"


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    """Load ``page`` headless, giving its scripts 10 s of virtual time, with the console on stderr."""
    command = [CHROMIUM, "--headless", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    command += ["--no-sandbox", "--virtual-time-budget=10000", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line and re.search(r"Uncaught|Error", line)]


def test_a_page_that_throws_is_caught(tmp_path: Path):
    page = tmp_path / "throws.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    assert any("undefinedFunction" in line for line in console_errors(chromium(page, "--dump-dom").stderr))


def test_report_draws_in_chromium(searched: str, tmp_path: Path):
    page = tmp_path / "report.html"
    assert run("report", "--study", "tiny_regression", "--storage", searched, "-o", page).exit_code == 0
    names = re.findall(r"id='figure-([\w-]+)'", page.read_text())
    assert len(names) >= 5

    dumped = chromium(page, "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert console_errors(dumped.stderr) == []
    dom = dumped.stdout
    for name in names:  # Plotly.newPlot drew into every figure's div
        div = re.search(rf'<div class="([^"]*)" id="{name}"', dom)
        assert div and "js-plotly-plot" in div.group(1), name
    assert dom.count('class="main-svg"') >= 2 * len(names)
    assert dom.count('class="point"') > 0  # scatter markers drawn as svg paths

    shot = tmp_path / "report.png"
    taken = chromium(page, f"--screenshot={shot}", f"--window-size={WINDOW}")
    assert taken.returncode == 0 and console_errors(taken.stderr) == []
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (5200, 1280)
    # The share of pixels that are not near-white: measured 0.057 for this 10-trial report, 0.015 for
    # the same page with plotly.js removed (text and tables only), 0.0003 for a blank page.
    drawn = (pixels[..., :3] < 0.9).any(axis=-1).mean()
    assert drawn > 0.03, drawn
