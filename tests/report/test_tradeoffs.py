"""search --also, export --pareto and show --robust through the CLI on the tiny model (issue #12)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main
from tunekit.study.records import CURVE_ATTR, ORIGIN_ATTR, RERUN_ATTR, SETTINGS_ATTR

pytestmark = pytest.mark.slow
FAST = ["--max-steps", 20, "--evaluations", 2]


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def copy(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)  # complete even while the WAL is not checkpointed


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


@pytest.fixture(scope="module")
def seconds_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("also") / "tunekit.db"
    done = run("search", TINY, "--trials", 10, *FAST, "--also", "seconds", "--storage", f"sqlite:///{path}")
    assert done.exit_code == 0, done.output
    return path


def test_also_seconds_makes_two_objectives_pruned_on_the_metric(seconds_study: Path, tmp_path: Path):
    url = f"sqlite:///{seconds_study}"
    study = optuna.load_study(study_name="tiny_regression", storage=url)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    assert study.user_attrs[SETTINGS_ATTR]["also"] == "seconds"
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) >= 5 and all(len(t.values) == 2 and 0 < t.values[1] < 60 for t in complete)
    # The metric's curve is stored by tunekit (Optuna's Trial.report raises here), ending at the value.
    for t in complete:
        curve = t.user_attrs[CURVE_ATTR]
        assert curve[str(20)] == pytest.approx(t.values[0]) and set(curve) == {"10", "20"}
    # Pruned at the middle evaluation: step 10 at the default batch (issue #10: the curve's steps are
    # at the default batch, the reason names the trial's own step).
    for t in [t for t in study.trials if t.state.name == "PRUNED"]:
        reason = t.user_attrs["tunekit.reason"]
        if "diverged" in reason:
            continue
        step = int(re.search(r"pruned at step (\d+) .*worst quarter", reason).group(1))
        assert step < t.user_attrs["tunekit.recipe"]["training"]["max_steps"]
        assert set(t.user_attrs[CURVE_ATTR]) == {"10"}
    shown = run("show", "--study", "tiny_regression", "--storage", url)
    assert shown.exit_code == 0 and "Pareto front (val_loss against seconds): trial " in shown.output
    best = min(complete, key=lambda t: t.values[0])
    assert f"Best: trial {best.number}, val_loss={best.values[0]:.6g}" in shown.output
    out = tmp_path / "front.yaml"
    assert run("export", "--study", "tiny_regression", "--storage", url, "--pareto", "-o", out).exit_code == 0
    files = sorted(tmp_path.glob("front-*.yaml"))
    front = {t.number: t for t in study.best_trials}
    assert len(files) == len(front)
    for f in files:
        result = yaml.safe_load(f.read_text())["result"]
        assert result["seconds"] == pytest.approx(front[result["trial"]].values[1])
    page_path = tmp_path / "r.html"
    assert run("report", "--study", "tiny_regression", "--storage", url, "-o", page_path).exit_code == 0
    page = page_path.read_text()
    pareto = json.loads(
        re.search(r"id='figure-pareto-front'>(.*?)</script>", page, re.S).group(1).replace("<\\/", "</")
    )
    assert sum(len(tr["x"]) for tr in pareto["data"] if tr.get("x")) == len(complete)
    curves = json.loads(
        re.search(r"id='figure-learning-curves'>(.*?)</script>", page, re.S).group(1).replace("<\\/", "</")
    )
    assert any(len(tr.get("x") or []) == 2 for tr in curves["data"])
    md = tmp_path / "r.md"
    assert run("report", "--study", "tiny_regression", "--storage", url, "--format", "md", "-o", md).exit_code == 0
    assert "## Pareto front (search --also)\n\n![pareto-front](r-pareto-front.png)" in md.read_text()
    from matplotlib.image import imread

    pixels = imread(tmp_path / "r-pareto-front.png")
    assert pixels.shape[:2] == (400, 600) and pixels.std() > 0.05  # drawn, not blank


def test_robust_reruns_are_stored_beside_and_reused(seconds_study: Path, tmp_path: Path):
    path = tmp_path / "tunekit.db"
    copy(seconds_study, path)
    url = f"sqlite:///{path}"
    before = [t.number for t in optuna.load_study(study_name="tiny_regression", storage=url).trials]
    first = run("show", "--study", "tiny_regression", "--storage", url, "--robust", "--seeds", 2, "--top", 2)
    assert first.exit_code == 0, first.output
    assert len(re.findall(r"^re-run of trial \d+, seed [12]: ", first.output, re.M)) == 4
    reruns = optuna.load_study(study_name="tiny_regression.reruns", storage=url).trials
    assert len(reruns) == 4 and all(t.state.name == "COMPLETE" for t in reruns)
    assert {t.user_attrs[ORIGIN_ATTR]["kind"] for t in reruns} == {"rerun"}
    assert {t.user_attrs["tunekit.recipe"]["training"]["seed"] for t in reruns} == {1, 2}
    # The study itself is untouched: TPE, the target and best_trial never see the re-runs.
    assert [t.number for t in optuna.load_study(study_name="tiny_regression", storage=url).trials] == before
    means = {}
    for of in {t.user_attrs[RERUN_ATTR]["of"] for t in reruns}:
        means[of] = sum(t.value for t in reruns if t.user_attrs[RERUN_ATTR]["of"] == of) / 2
    winner = min(means, key=means.get)
    assert f"Most robust: trial {winner}." in first.output
    again = run("show", "--study", "tiny_regression", "--storage", url, "--robust", "--seeds", 2, "--top", 2)
    assert again.exit_code == 0 and "re-run of" not in again.output and f"Most robust: trial {winner}." in again.output
    assert len(optuna.load_study(study_name="tiny_regression.reruns", storage=url).trials) == 4
    listed = run("studies", "--storage", url)
    assert listed.exit_code == 0 and "tiny_regression.reruns" not in listed.output
    assert re.search(r"tiny_regression .* 4\s*│", listed.output), listed.output  # its 4 re-runs, on its own row
    page_path = tmp_path / "r.html"
    assert run("report", "--study", "tiny_regression", "--storage", url, "-o", page_path).exit_code == 0
    table = re.search(r"<table id='robust'>(.*?)</table>", page_path.read_text(), re.S).group(1)
    assert table.count("<tr>") == 3 and f"<td>1</td><td>{winner}</td>" in table


def test_also_peak_memory_on_cpu(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'mem.db'}"
    done = run("search", TINY, "--trials", 3, *FAST, "--also", "peak_memory", "--storage", url)
    assert done.exit_code == 0, done.output
    complete = [t for t in optuna.load_study(study_name="tiny_regression", storage=url).trials if t.values]
    assert complete and all(50 < t.values[1] < 64 * 1024 for t in complete)  # MiB of peak RSS


def test_bad_input_leaves_the_database_untouched(seconds_study: Path, tmp_path: Path):
    path = tmp_path / "tunekit.db"
    copy(seconds_study, path)
    url = f"sqlite:///{path}"
    snapshot = dump(path)
    cases = [
        (["search", TINY, *FAST, "--also", "flops"], "--also must be one of seconds, peak_memory, not 'flops'"),
        (["show", "--study", "tiny_regression", "--robust", "--seeds", 0], "'--seeds': 0 is not in the range x>=1"),
        (["search", TINY, *FAST, "--study", "single", "--trials", 1], None),
    ]
    for args, message in cases[:2]:
        done = run(*args, "--storage", url)
        assert done.exit_code == 2 and message in done.output, done.output
    assert dump(path) == snapshot
    assert run(*cases[2][0], "--storage", url).exit_code == 0
    snapshot = dump(path)
    pareto = run("export", "--study", "single", "--storage", url, "--pareto")
    assert pareto.exit_code == 2 and "has one objective, so it has no Pareto front" in pareto.output
    storage = optuna.storages.RDBStorage(url)
    settings = optuna.load_study(study_name="single", storage=storage).user_attrs[SETTINGS_ATTR]
    empty = optuna.create_study(study_name="empty", storage=storage)
    empty.set_user_attr(SETTINGS_ATTR, settings)
    snapshot = dump(path)
    robust = run("show", "--study", "empty", "--storage", url, "--robust")
    assert robust.exit_code == 2 and robust.output.strip().count("\n") == 0
    assert "study 'empty' has no complete trial to re-run" in robust.output
    assert dump(path) == snapshot
