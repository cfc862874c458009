"""Scripts as people write them, through the real CLI (issue #15): manual optimization, a
LightningCLI script with its config (search, resume, export, then a real LightningCLI fit).

Real Lightning fits of tiny models, real SQLite files.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import optuna
import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, REPRODUCE_REL_TOL, SCRIPTS, TINY

from tunekit.cli import main
from tunekit.study.records import RECIPE_ATTR

pytestmark = pytest.mark.slow  # end to end: real CLI runs (issue #13)

FAST = ["--max-steps", "20", "--evaluations", "2"]
GAN = SCRIPTS / "manual_gan.py"


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def load(storage_url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url)


def test_manual_optimization_module_is_searched_without_clipping(storage_url):
    result = run("search", GAN, "--trials", "2", *FAST)
    assert result.exit_code == 0, result.output
    trials = load(storage_url, "manual_gan").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for t in trials:
        assert "gradient_clip_val" not in t.params
        training = t.user_attrs[RECIPE_ATTR]["training"]
        assert training["gradient_clip_val"] is None and training["manual_optimization"] is True


def test_two_optimizers_are_refused_before_anything_is_written(tmp_path):
    result = run("search", GAN, "--trials", "2", "--model-arg", "optimizers=2", *FAST)
    assert result.exit_code == 2, result.output
    assert "TinyGAN optimizes manually with 2 optimizers" in " ".join(result.output.split())
    assert result.output.count("\n") <= 3
    assert not (tmp_path / "tunekit.db").exists()


MAIN = """

if __name__ == "__main__":
    from lightning.pytorch.cli import LightningCLI

    cli = LightningCLI(TinyRegression, TinyData, subclass_mode_model={sub}, subclass_mode_data={sub})
    print("FINAL", float(cli.trainer.callback_metrics["val_loss"]))
"""

FORMS = {
    "flat": {"model": {"hidden": 8}, "data": {"batch_size": 8}},
    "class_path": {
        "model": {"class_path": "__main__.TinyRegression", "init_args": {"hidden": 8}},
        "data": {"class_path": "__main__.TinyData", "init_args": {"batch_size": 8}},
    },
}


@pytest.mark.parametrize("form", FORMS)
def test_lightning_cli_script_with_its_config(form, storage_url, write_script, tmp_path):
    script = write_script(TINY.read_text() + MAIN.format(sub=form == "class_path"), name="cli_model.py")
    config = tmp_path / "cli.yaml"
    config.write_text(yaml.safe_dump({**FORMS[form], "trainer": {"max_epochs": 3}, "seed_everything": 7}))

    searched = run("search", script, "--config", config, "--trials", "2", "--model-arg", "hidden=12", *FAST)
    assert searched.exit_code == 0, searched.output
    assert "does not use trainer (max_epochs), seed_everything" in " ".join(searched.output.split())
    study = load(storage_url, "cli_model")
    stored = study.user_attrs["tunekit.settings"]["script"]
    assert stored["model_args"] == {"hidden": 12}  # --model-arg overrides the config
    assert stored["data_args"] == {"batch_size": 8}
    assert study.user_attrs["tunekit.settings"]["space"]["batch_sizes"] == [4, 8, 16]  # around the config's

    resumed = run("resume", "--study", "cli_model", "--trials", "1")  # needs nothing but the study
    assert resumed.exit_code == 0, resumed.output
    trials = load(storage_url, "cli_model").get_trials()
    assert len(trials) == 3 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)

    best = tmp_path / "best.yaml"
    assert run("export", "--study", "cli_model", "--format", "lightning", "-o", best).exit_code == 0
    exported = yaml.safe_load(best.read_text())
    trial = min((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    batch = trial.user_attrs[RECIPE_ATTR]["training"]["batch_size"]
    if form == "flat":
        assert exported["model"] == {"hidden": 12} and exported["data"] == {"batch_size": batch}
    else:
        assert exported["model"]["class_path"] == "__main__.TinyRegression"
        assert exported["data"]["init_args"] == {"batch_size": batch}

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    fitted = subprocess.run(
        [sys.executable, str(script), "fit", "--config", str(best)], capture_output=True, text=True, env=env
    )
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    value = float(fitted.stdout.split("FINAL ")[1].split()[0])
    assert math.isclose(value, trial.value, rel_tol=REPRODUCE_REL_TOL), (value, trial.value)


def test_failures_outside_the_script_are_not_called_a_broken_script(storage_url, write_script):
    """An EarlyStopping on a metric never logged fails inside Lightning (the one-batch check skips it)."""
    source = TINY.read_text() + (
        "\n\ndef _callbacks(self):\n"
        "    return [pl.callbacks.EarlyStopping(monitor='val_nope', strict=True)]\n\n\n"
        "TinyRegression.configure_callbacks = _callbacks\n"
    )
    result = run("search", write_script(source), "--trials", "4", *FAST)
    assert result.exit_code == 1, result.output
    message = " ".join(result.output.split())
    assert "inside Lightning or tunekit, not in the script's code" in message
    assert "the script is broken" not in message
