"""``tunekit report`` on a study made by a real tiny search: the HTML's figures, the Markdown, bad input.

The figures are read back from the JSON the page embeds and checked against the study as Optuna
stores it, not against the report's own numbers.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import TINY
from plotly.offline import get_plotlyjs
from searched_study import TRIALS, run, searched_storage  # noqa: F401  (the fixture "searched")

from tunekit.report.figures import PRIOR_TRACE
from tunekit.study.records import PREDICTED_ATTR, RECIPE_ATTR, SETTINGS_ATTR

TOP = 3


def figures_of(page: str) -> dict[str, dict]:
    found = re.findall(r"<script type='application/json' id='figure-([\w-]+)'>(.*?)</script>", page, re.S)
    return {name: json.loads(data) for name, data in found}


def test_html_report_shows_the_study(searched: str, tmp_path: Path):
    out = tmp_path / "report.html"
    done = run("report", "--study", "tiny_regression", "--storage", searched, "-o", out, "--top", TOP)
    assert done.exit_code == 0, done.output
    page = out.read_text()
    study = optuna.load_study(study_name="tiny_regression", storage=searched)
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
    assert len(finished) == TRIALS and complete

    # Offline: plotly.js is in the page once, and nothing else refers to a resource elsewhere.
    plotly_js = get_plotlyjs()
    assert page.count(plotly_js) == 1
    rest = page.replace(plotly_js, "")
    assert "src=" not in rest and "href=" not in rest and "cdn.plot.ly" not in rest
    assert rest.count("Plotly.newPlot") == 1

    figs = figures_of(page)
    assert {"history", "family-schedule", "metric-vs-lr", "learning-curves", "importance-all-families"} <= set(figs)

    markers = [tr for tr in figs["history"]["data"] if tr["mode"] == "markers"]
    assert sum(len(tr["x"]) for tr in markers if "pruned" not in tr["name"]) == len(complete)
    assert sum(len(tr["x"]) for tr in markers if "pruned" in tr["name"]) == len(pruned)
    best = min(complete, key=lambda t: t.value)
    lines = [tr for tr in figs["history"]["data"] if tr["mode"] == "lines"]
    assert min(min(tr["y"]) for tr in lines) == pytest.approx(best.value)

    assert figs["family-schedule"]["data"][0]["colorscale"][0][1] == "#fde725"  # minimized: smallest brightest
    cells = [c for row in figs["family-schedule"]["data"][0]["text"] for c in row if c]
    assert sum(int(re.search(r"(\d+) trials?", c).group(1)) for c in cells) == len(finished)
    assert sum(int(re.search(r"(\d+) pruned", c).group(1)) for c in cells) == len(pruned)

    # The prior's LR marker of each family sits at the LR of the point the search enqueued as its prediction.
    predicted = {
        t.user_attrs[PREDICTED_ATTR]: t.user_attrs[RECIPE_ATTR]["optimizer"]["lr"]
        for t in trials
        if PREDICTED_ATTR in t.user_attrs
    }
    marked = [tr["x"][0] for tr in figs["metric-vs-lr"]["data"] if tr["name"] == PRIOR_TRACE]
    assert predicted and sorted(marked) == pytest.approx(sorted(predicted.values()))
    points = [tr for tr in figs["metric-vs-lr"]["data"] if tr["name"] != PRIOR_TRACE]
    assert sum(len(tr["x"]) for tr in points) == len(complete) + len([t for t in pruned if t.intermediate_values])

    curves = figs["learning-curves"]["data"]
    drawn = [tr for tr in curves if tr.get("showlegend") is not False]
    top = sorted(complete, key=lambda t: t.value)[:TOP]
    assert [tr["name"].split()[1] for tr in drawn[: len(top)]] == [str(t.number) for t in top]
    assert len(drawn) == len(top) + min(TOP, len(pruned))
    assert all(tr["opacity"] < 1 for tr in drawn[len(top) :])
    multipliers = [tr for tr in curves if tr.get("showlegend") is False]
    assert len(multipliers) == len(drawn) and all(0 <= y <= 1 for tr in multipliers for y in tr["y"])

    # The best recipe is the one tunekit export writes, and the header counts the states.
    recipe = yaml.safe_load(html.unescape(re.search(r"<pre id='best-recipe'>(.*?)</pre>", page, re.S).group(1)))
    exported = run("export", "--study", "tiny_regression", "--storage", searched)
    assert recipe == yaml.safe_load(exported.output)
    assert recipe["result"]["trial"] == best.number
    assert f"complete {len(complete)}" in page
    assert "tunekit export --study tiny_regression" in page
    for t in pruned:
        assert f"<tr><td>{t.number}</td><td>PRUNED</td>" in page


def test_markdown_report_writes_pngs(searched: str, tmp_path: Path):
    out = tmp_path / "summary.md"
    done = run("report", "--study", "tiny_regression", "--storage", searched, "--format", "md", "-o", out)
    assert done.exit_code == 0, done.output
    text = out.read_text()
    images = re.findall(r"!\[[\w-]+\]\(([\w.-]+\.png)\)", text)
    assert {"summary-history.png", "summary-learning-curves.png", "summary-metric-vs-lr.png"} <= set(images)
    for name in images:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert "```yaml\ntunekit_recipe: 1" in text and "| family | schedule | best | trials | pruned |" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if re.match(r"\| \w+ \| \w+ \| [\d.e+-]+ \|", line)]
    trials = optuna.load_study(study_name="tiny_regression", storage=searched).get_trials()
    assert sum(int(r[3]) for r in rows) == TRIALS
    assert sum(int(r[4]) for r in rows) == sum(t.state.name == "PRUNED" for t in trials)


def test_report_of_study_without_complete_trial_is_bad_input(searched: str, tmp_path: Path):
    storage = optuna.storages.RDBStorage(searched)
    settings = optuna.load_study(study_name="tiny_regression", storage=storage).user_attrs[SETTINGS_ATTR]
    empty = optuna.create_study(study_name="empty", storage=storage)
    empty.set_user_attr(SETTINGS_ATTR, settings)
    done = run("report", "--study", "empty", "--storage", searched, "-o", tmp_path / "r.html")
    assert done.exit_code == 2
    assert "study 'empty' has no complete trial yet" in done.output and done.output.count("\n") == 1
    assert not (tmp_path / "r.html").exists()
    assert optuna.load_study(study_name="empty", storage=storage).get_trials() == []


def test_report_of_unknown_study_or_missing_folder_is_bad_input(searched: str, tmp_path: Path):
    unknown = run("report", "--study", "nope", "--storage", searched)
    assert unknown.exit_code == 2 and "no study 'nope'" in unknown.output
    missing = run("report", "--study", "tiny_regression", "--storage", searched, "-o", tmp_path / "no" / "r.html")
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_maximized_study_reports_its_largest_value_as_best(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'max.db'}"
    search = ["search", TINY, "--trials", 4, "--max-steps", 20, "--evaluations", 2, "--direction", "maximize"]
    assert run(*search, "--storage", url).exit_code == 0
    out = tmp_path / "report.html"
    assert run("report", "--study", "tiny_regression", "--storage", url, "-o", out).exit_code == 0
    page = out.read_text()
    complete = [t for t in optuna.load_study(study_name="tiny_regression", storage=url).get_trials() if t.value]
    best = max(complete, key=lambda t: t.value)
    recipe = yaml.safe_load(html.unescape(re.search(r"<pre id='best-recipe'>(.*?)</pre>", page, re.S).group(1)))
    assert recipe["result"]["trial"] == best.number
    lines = [tr for tr in figures_of(page)["history"]["data"] if tr["mode"] == "lines"]
    assert max(max(tr["y"]) for tr in lines) == pytest.approx(best.value)
    # Viridis from dark (#440154) at the smallest value: the best cells, the largest, are the brightest.
    assert figures_of(page)["family-schedule"]["data"][0]["colorscale"][0][1] == "#440154"
