"""Studies and recipes written before the restructure (issue #13) keep loading.

The files under tests/data/ were made by tunekit at commit 3eb48c3 (see tests/data/README.md):
show, export (both formats), resume's settings check and train all read them as they did then.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
MADE_AT = "/tmp/tk13/mk/tiny_regression.py"  # the script path stored in the old study


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def old_study(tmp_path: Path) -> str:
    """A copy of the old study database (the committed file is never written)."""
    copy = tmp_path / "old.db"
    shutil.copy(DATA / "study_v1.sqlite", copy)
    return f"sqlite:///{copy}"


def test_show_reads_old_study(old_study):
    shown = run("show", "--study", "tiny", "--storage", old_study)
    assert shown.exit_code == 0, shown.output
    assert "complete 3, fail 1, waiting 1" in shown.output
    assert "interrupted" in shown.output
    assert "Best: trial 1, val_loss=0.129194" in shown.output
    one = run("show", "--study", "tiny", "--storage", old_study, "--trial", "4")
    assert one.exit_code == 0, one.output
    assert "retry of interrupted trial 3" in one.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "recipe_v1.yaml"),
        (("--trial", "0"), "recipe_v1_trial0.yaml"),
        (("--format", "lightning"), "recipe_v1_lightning_issue15.yaml"),
    ],
)
def test_export_of_old_study_is_unchanged(old_study, tmp_path, args, expected):
    out = tmp_path / "out.yaml"
    exported = run("export", "--study", "tiny", "--storage", old_study, "-o", out, *args)
    assert exported.exit_code == 0, exported.output
    assert out.read_text() == (DATA / expected).read_text()


def test_lightning_export_of_old_study_keeps_what_it_had(old_study, tmp_path):
    """Issue #15 made the LightningCLI export complete (data, validation points); what it had is unchanged."""
    out = tmp_path / "out.yaml"
    assert run("export", "--study", "tiny", "--storage", old_study, "-o", out, "--format", "lightning").exit_code == 0
    new, old = yaml.safe_load(out.read_text()), yaml.safe_load((DATA / "recipe_v1_lightning.yaml").read_text())
    assert new["seed_everything"] == old["seed_everything"]
    assert {k: new["trainer"][k] for k in old["trainer"]} == old["trainer"]  # the same recipe in UseRecipe
    assert new["data"] == {"batch_size": 16}  # what the old header asked the user to set


def _move_script(url: str, to: Path) -> None:
    """Point the copied study's stored script path at ``to`` (as if the user had moved the file back)."""
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        (value,) = conn.execute("SELECT value_json FROM study_user_attributes WHERE key='tunekit.settings'").fetchone()
        conn.execute(
            "UPDATE study_user_attributes SET value_json=? WHERE key='tunekit.settings'",
            (value.replace(MADE_AT, str(to)),),
        )


def test_resume_reads_old_settings(old_study):
    # The stored script is not on this machine: resume read the settings far enough to say so.
    if Path(MADE_AT).exists():
        pytest.skip("the study's original script exists here")
    resumed = CliRunner().invoke(main, ["resume", "--study", "tiny", "--storage", old_study])
    assert resumed.exit_code == 2, resumed.output
    assert f"the study's script '{MADE_AT}' no longer exists" in resumed.output


def test_search_continues_old_study_settings(old_study):
    """search on a moved script with the old study name compares against the stored settings."""
    other = CliRunner().invoke(
        main, ["search", str(TINY), "--study", "tiny", "--storage", old_study, "--max-steps", "20"]
    )
    assert other.exit_code == 2, other.output
    assert "study 'tiny' was created with" in other.output


@pytest.mark.slow
def test_train_reads_old_recipe():
    trained = run("train", DATA / "recipe_v1.yaml", TINY, "--accelerator", "cpu")
    assert trained.exit_code == 0, trained.output
    assert "val_loss = " in trained.output and "the recipe's trial had 0.129194" in trained.output


def test_old_lightning_config_recipe_loads():
    from tunekit.recipes import Recipe

    config = yaml.safe_load((DATA / "recipe_v1_lightning.yaml").read_text())
    callback = config["trainer"]["callbacks"][0]
    assert callback["class_path"] == "tunekit.training.use_recipe.UseRecipe"
    recipe = Recipe.from_dict(callback["init_args"]["recipe"])
    assert recipe.to_dict() == Recipe.from_dict(yaml.safe_load((DATA / "recipe_v1.yaml").read_text())).to_dict()


@pytest.mark.slow
def test_resume_runs_old_study(old_study):
    """The old WAITING retry (origin written as a sentence) runs first, and the stored target is met."""
    import optuna

    _move_script(old_study, TINY)
    resumed = run("resume", "--study", "tiny", "--storage", old_study, "--accelerator", "cpu")
    assert resumed.exit_code == 0, resumed.output
    trials = optuna.load_study(study_name="tiny", storage=old_study).get_trials()
    assert trials[4].state.name == "COMPLETE"
    assert trials[4].params == trials[3].params
    assert [t.state.name for t in trials].count("COMPLETE") == 5


def test_old_study_runs_with_default_device_options(old_study):
    """Issue #11: a study stored before device options existed reads as one CPU/auto device in 32-true."""
    from tunekit.study.settings import open_study
    from tunekit.study.storage import open_storage
    from tunekit.training.fit import RunOptions

    _, settings = open_study(open_storage(old_study), "tiny")
    assert settings.run == {} and RunOptions.from_dict(settings.run) == RunOptions()
    assert settings.comparable()["precision"] == "32-true"
