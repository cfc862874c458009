"""The measured prior (issue #14): a short LR probe, its cost, what it accepts, the CLI and bad input.

Real tiny Lightning fits (tests/scripts) and real SQLite files; nothing is mocked.
"""

from __future__ import annotations

import json
import math
import re

import optuna
import pytest
from click.testing import CliRunner
from conftest import SCRIPTS, TINY

from tunekit.cli import main
from tunekit.errors import BadInput
from tunekit.priors import MEASURE, make_prior, probe_request
from tunekit.priors._probe import MIN_PROBE_STEPS, PROBE_LRS, PROBE_SHARE, choose, probe_steps, run_probe
from tunekit.search_spaces.catalog import default_schedules
from tunekit.study.records import PREDICTED_ATTR, RECIPE_ATTR, SETTINGS_ATTR
from tunekit.training.fit import RunOptions
from tunekit.training.script import ScriptSpec, load_script

TRIALS, MAX_STEPS = 8, 200  # probe_steps: floor(0.05 * 1600 / 6) = 13 steps per LR


def tiny_request(tmp_path, schedules=None, script=TINY, **model_args):
    spec = ScriptSpec(str(script), model_args=model_args)
    loaded = load_script(spec)
    batch = loaded.default_batch_size
    request = probe_request(
        TRIALS,
        MAX_STEPS,
        schedules or default_schedules(),
        batch,
        manual_optimization=loaded.manual_optimization(batch),
        options=RunOptions("cpu"),
    )
    return loaded, request


def test_probe_cost_is_within_its_share(tmp_path):
    """Every optimizer step the probe trains, counted by the module itself, fits in 5% of the search."""
    steps_file = tmp_path / "steps.txt"
    loaded, request = tiny_request(tmp_path, steps_file=str(steps_file))
    result = run_probe(loaded, request)
    trained = [int(line.split()[2]) for line in steps_file.read_text().splitlines() if line.startswith("end")]
    assert len(trained) == len(PROBE_LRS)
    assert sum(trained) == len(PROBE_LRS) * probe_steps(TRIALS, MAX_STEPS)
    assert sum(trained) <= PROBE_SHARE * TRIALS * MAX_STEPS
    assert result.share <= PROBE_SHARE and result.steps >= MIN_PROBE_STEPS
    assert [lr for lr, _ in result.points] == list(PROBE_LRS)
    assert PROBE_LRS[0] <= result.lr <= PROBE_LRS[-1]


@pytest.mark.parametrize(
    "script, schedules, model_args",
    [
        (TINY, ["none"], {}),  # only schedule-free schedules: the probe still runs AdamW on a schedule
        (TINY, ["constant"], {}),
        (SCRIPTS / "manual_gan.py", None, {}),  # manual optimization: no clipping, scored by the metric
    ],
    ids=["schedule-free-only", "constant", "manual-optimization"],
)
def test_probe_refuses_nothing_a_trial_accepts(tmp_path, script, schedules, model_args):
    loaded, request = tiny_request(tmp_path, schedules, script, **model_args)
    result = run_probe(loaded, request)
    assert any(math.isfinite(v) for _, v in result.points)
    assert result.lr > 0
    if script != TINY:
        assert result.score == "val_loss at the end"
        assert request.base.training.gradient_clip_val is None


def test_choose_takes_the_parabola_vertex_and_the_edge():
    """The vertex of y = (log10 lr + 2.2)^2 through the grid's points near it is 10^-2.2."""
    points = [(lr, (math.log10(lr) + 2.2) ** 2) for lr in PROBE_LRS]
    lr, edge = choose(points)
    assert lr == pytest.approx(10**-2.2, rel=0.05) and not edge
    falling = [(lr, -math.log10(lr)) for lr in PROBE_LRS]
    assert choose(falling) == (PROBE_LRS[-1], True)
    diverged = [(lr, v if lr < 1e-2 else math.inf) for lr, v in points]
    assert choose(diverged)[0] <= 1e-2


def test_too_small_a_budget_is_refused_before_anything_trains():
    loaded = load_script(ScriptSpec(str(TINY)))
    small = probe_request(2, 20, default_schedules(), loaded.default_batch_size)
    with pytest.raises(BadInput, match=r"--prior measure needs at least \d+ optimizer steps"):
        make_prior(MEASURE, loaded, 20, loaded.default_batch_size, probe=small)


@pytest.mark.parametrize("existing", [False, True], ids=["new-db", "existing-db"])
def test_measure_with_a_budget_too_small_to_probe_is_bad_input(tmp_path, existing):
    db = tmp_path / "probe.db"
    url = f"sqlite:///{db}"
    if existing:
        optuna.create_study(study_name="other", storage=url)
    before = db.read_bytes() if existing else None
    args = ["search", str(TINY), "--storage", url, "--prior", "measure", "--trials", "2", "--max-steps", "20"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "--prior measure needs at least 1440 optimizer steps in all (--trials x --max-steps)" in text
    assert "raise --trials or --max-steps, or use --prior none." in text
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1
    assert "Traceback" not in result.output
    assert (db.read_bytes() == before) if existing else not db.exists()


@pytest.mark.slow
def test_search_with_prior_measure_through_the_cli(tmp_path):
    """The probe's curve and centre are stored in the study; the first trial runs AdamW at that centre."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    args = ["search", str(TINY), "--storage", url, "--prior", "measure", "--trials", str(TRIALS)]
    args += ["--max-steps", str(MAX_STEPS), "--evaluations", "2", "--optimizers", "adamw,lion", "--accelerator", "cpu"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="tiny_regression", storage=url)
    prior = study.user_attrs[SETTINGS_ATTR]["prior"]
    assert prior["law"] == MEASURE and len(prior["probe"]["points"]) == len(PROBE_LRS)
    assert prior["lr"] == prior["probe"]["lr"] and prior["probe"]["share"] <= PROBE_SHARE
    first = min(study.get_trials(), key=lambda t: t.number)
    assert first.user_attrs[PREDICTED_ATTR] == "adamw"
    assert first.user_attrs[RECIPE_ATTR]["optimizer"]["lr"] == pytest.approx(prior["lr"], rel=1e-3)
    assert first.user_attrs[RECIPE_ATTR]["prior"]["probe"] == prior["probe"]
    shown = CliRunner().invoke(
        main,
        ["predict", str(TINY), "--prior", "measure", "--trials", str(TRIALS), "--max-steps", str(MAX_STEPS)]
        + ["--format", "json"],
    )
    assert shown.exit_code == 0, shown.output
    centres = json.loads(shown.output)["centres"]
    assert centres["probe"]["points"] and centres["lr"]["source"].startswith("measured:")
    assert "timescale rule" in centres["weight_decay"]["adamw"]["source"]

    # The report shows the probe: a figure of its curve in the HTML, a PNG and its caption in the Markdown.
    html_out, md_out = tmp_path / "r.html", tmp_path / "r.md"
    for out, fmt in ((html_out, "html"), (md_out, "md")):
        report = ["report", "--study", "tiny_regression", "--storage", url, "--format", fmt, "-o", str(out)]
        done = CliRunner().invoke(main, report)
        assert done.exit_code == 0, done.output
    page = html_out.read_text()
    figure = re.search(r"<script type='application/json' id='figure-lr-probe'>(.*?)</script>", page, re.S)
    assert figure and json.loads(figure.group(1))["data"][0]["x"] == [
        lr for lr, v in prior["probe"]["points"] if v is not None
    ]
    text = md_out.read_text()
    assert "measured by an LR probe" in text and (tmp_path / "r-lr-probe.png").stat().st_size > 0


@pytest.mark.slow
def test_continuing_a_study_reuses_its_measured_prior_without_probing_again(tmp_path):
    """A second `search` on a --prior measure study adds trials with the stored centre: the six
    probe runs (5% of the first search's compute) are not trained again only to be thrown away."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    starts = tmp_path / "starts.txt"  # the tiny model appends "start ..." whenever a fit starts
    args = ["search", str(TINY), "--storage", url, "--prior", "measure", "--trials", "3", "--max-steps", "480"]
    args += ["--evaluations", "2", "--optimizers", "adamw", "--accelerator", "cpu"]
    args += ["--model-arg", f"steps_file={starts}"]

    def fits_started_by_a_search() -> int:
        def fits() -> int:
            lines = starts.read_text().splitlines() if starts.exists() else []
            return sum(line.startswith("start ") for line in lines)

        before = fits()
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return fits() - before

    first = fits_started_by_a_search()
    prior = optuna.load_study(study_name="tiny_regression", storage=url).user_attrs[SETTINGS_ATTR]["prior"]
    second = fits_started_by_a_search()
    study = optuna.load_study(study_name="tiny_regression", storage=url)
    assert first - second == len(PROBE_LRS)  # the same trials and check, no probe
    assert study.user_attrs[SETTINGS_ATTR]["prior"] == prior and len(study.get_trials()) == 6
