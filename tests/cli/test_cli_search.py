"""The search loop through the real CLI: search, continue, show, export, train, resume.

Real Lightning fits of a tiny model, real SQLite files (conftest points TUNEKIT_STORAGE at tmp_path).
"""

from __future__ import annotations

import math

import optuna
import pytest
import yaml
from click.testing import CliRunner
from conftest import REPRODUCE_REL_TOL, TINY

from tunekit.cli import main
from tunekit.study.records import PREDICTION, REASON_ATTR, TRACEBACK_ATTR, origin_of

pytestmark = pytest.mark.slow  # end to end: real CLI runs (issue #13)

FAST = ["--max-steps", "20", "--evaluations", "2"]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def load(storage_url: str, name: str = "tiny_regression") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url)


def test_search_continue_show_export_train(storage_url, tmp_path):
    first = run("search", TINY, "--trials", "3", *FAST)
    assert first.exit_code == 0, first.output
    assert "tunekit export --study tiny_regression" in first.output
    study = load(storage_url)
    trials = study.get_trials()
    assert [t.state.name for t in trials].count("COMPLETE") + [t.state.name for t in trials].count("PRUNED") == 3
    assert origin_of(trials[0]) == PREDICTION and PREDICTION.describe() == "prior prediction"
    # Conditional, namespaced parameters: only the chosen family's own.
    for t in trials:
        family = t.params["optimizer"]
        assert all(k.split(".")[0] in (family, t.params.get("schedule"), k) for k in t.params)

    again = run("search", TINY, "--trials", "3", *FAST)
    assert again.exit_code == 0, again.output
    assert len(load(storage_url).get_trials()) == 6

    shown = run("show", "--study", "tiny_regression")
    assert shown.exit_code == 0, shown.output
    assert "COMPLETE" in shown.output and "val_loss" in shown.output

    listed = run("studies")
    assert listed.exit_code == 0 and "tiny_regression" in listed.output

    out = tmp_path / "recipe.yaml"
    exported = run("export", "--study", "tiny_regression", "-o", out)
    assert exported.exit_code == 0, exported.output
    recipe = yaml.safe_load(out.read_text())
    assert recipe["tunekit_recipe"] == 1
    assert isinstance(recipe["optimizer"]["lr"], float)
    assert all(isinstance(v, float) for v in recipe["optimizer"].get("betas", []))
    best = min((t for t in load(storage_url).get_trials() if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert recipe["result"] == {
        "metric": "val_loss",
        "value": best.value,
        "study": "tiny_regression",
        "trial": best.number,
    }

    trained = run("train", out, TINY)
    assert trained.exit_code == 0, trained.output
    value = float(trained.output.split("val_loss = ")[1].split()[0])
    # Same seed, same validation points, CPU: the trial's value is reproduced.
    assert math.isclose(value, best.value, rel_tol=REPRODUCE_REL_TOL), (value, best.value)

    done = run("resume", "--study", "tiny_regression")
    assert done.exit_code == 0 and "already has its 6 trials" in done.output


def test_restricted_space(storage_url):
    result = run("search", TINY, "--trials", "2", "--optimizers", "sgd", "--schedules", "cosine,linear", *FAST)
    assert result.exit_code == 0, result.output
    for t in load(storage_url).get_trials():
        assert t.params["optimizer"] == "sgd"
        assert t.params["schedule"] in ("cosine", "linear")


def test_schedule_free_gets_only_none(storage_url):
    result = run("search", TINY, "--trials", "2", "--optimizers", "schedulefree_adamw", *FAST)
    assert result.exit_code == 0, result.output
    for t in load(storage_url).get_trials():
        assert "schedule" not in t.params
        assert t.user_attrs["tunekit.recipe"]["schedule"]["name"] == "none"


def test_user_exception_fails_trial_with_traceback_then_stops_broken_study(storage_url):
    result = run("search", TINY, "--trials", "5", "--model-arg", "fail_at_step=3", *FAST)
    assert result.exit_code == 1
    assert "first 3 trials all failed" in result.output
    trials = load(storage_url).get_trials()
    assert len(trials) == 3
    for t in trials:
        assert t.state.name == "FAIL"
        assert t.user_attrs[REASON_ATTR] == "RuntimeError: boom in training_step"
        assert "training_step" in t.user_attrs[TRACEBACK_ATTR]
    shown = run("show", "--study", "tiny_regression", "--trial", "0")
    assert "boom in training_step" in shown.output and "Traceback" in shown.output


def test_divergence_is_pruned_with_reason(storage_url):
    result = run("search", TINY, "--trials", "1", "--model-arg", "nan_at_step=5", *FAST)
    assert result.exit_code == 0, result.output
    (trial,) = load(storage_url).get_trials()
    assert trial.state.name == "PRUNED"
    assert trial.user_attrs[REASON_ATTR].startswith("diverged at step 5")


def test_metric_never_logged_is_bad_input_and_writes_nothing(storage_url):
    result = run("search", TINY, "--trials", "1", "--metric", "val_acc", *FAST)
    assert result.exit_code == 2
    assert "'val_acc' is never logged (logged: " in result.output and "val_loss" in result.output
    assert optuna.get_all_study_names(storage_url) == []


def test_continuing_with_another_budget_is_refused(storage_url):
    assert run("search", TINY, "--trials", "1", *FAST).exit_code == 0
    result = run("search", TINY, "--trials", "1", "--max-steps", "30")
    assert result.exit_code == 2
    assert "created with --max-steps 20, not 30" in result.output
    assert len(load(storage_url).get_trials()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizers", "adamw,nope"], "unknown optimizer 'nope'; choose from:"),
        (["--schedules", "cosinus"], "unknown schedule 'cosinus'"),
        (["--optimizers", "schedulefree_adamw", "--schedules", "cosine"], "no optimizer in --optimizers can use"),
        (["--max-steps", "0"], "0 is not in the range x>=1"),
        (["--trials", "-1"], "x>=1"),
    ],
)
def test_bad_options_exit_2(args, message, storage_url):
    result = run("search", TINY, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert optuna.get_all_study_names(storage_url) == []


def test_resume_and_export_unknown_study_list_the_studies(storage_url):
    assert run("search", TINY, "--trials", "1", *FAST).exit_code == 0
    for command in (["resume"], ["export"], ["show"]):
        result = run(*command, "--study", "nope")
        assert result.exit_code == 2
        assert "no study 'nope' in this storage (studies: tiny_regression)" in result.output


def test_lightning_export_trains_the_same_as_the_recipe(storage_url, tmp_path):
    """The LightningCLI form carries the recipe in UseRecipe: a Trainer built from it reproduces the trial."""
    import lightning.pytorch as pl

    assert run("search", TINY, "--trials", "1", "--optimizers", "adamw", *FAST).exit_code == 0
    out = tmp_path / "cli.yaml"
    assert run("export", "--study", "tiny_regression", "--format", "lightning", "-o", out).exit_code == 0
    config = yaml.safe_load(out.read_text())
    trainer_cfg = config["trainer"]
    callbacks = []  # instantiated from class_path/init_args, as LightningCLI does
    for cb in trainer_cfg.pop("callbacks"):
        module, _, name = cb["class_path"].rpartition(".")
        callbacks.append(getattr(__import__(module, fromlist=[name]), name)(**cb.get("init_args", {})))
    from tunekit.training.script import ScriptSpec, load_script

    loaded = load_script(ScriptSpec(str(TINY)))
    pl.seed_everything(config["seed_everything"])
    model, data = loaded.build_model(), loaded.build_data(callbacks[0].recipe.training.batch_size)
    trainer = pl.Trainer(
        **trainer_cfg, callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model, datamodule=data)
    (trial,) = load(storage_url).get_trials()
    assert math.isclose(float(trainer.callback_metrics["val_loss"]), trial.value, rel_tol=REPRODUCE_REL_TOL)


def test_each_family_starts_at_its_predicted_point(storage_url):
    result = run("search", TINY, "--trials", "3", "--optimizers", "sgd,lion,schedulefree_adamw", *FAST)
    assert result.exit_code == 0, result.output
    trials = load(storage_url).get_trials()
    assert [t.params["optimizer"] for t in trials] == ["sgd", "lion", "schedulefree_adamw"]
    assert all(origin_of(t) == PREDICTION for t in trials)


def test_script_without_configure_optimizers(storage_url, write_script):
    source = TINY.read_text().replace(
        "    def configure_optimizers(self):\n        return torch.optim.SGD(self.parameters(), lr=0.01)\n", ""
    )
    assert "configure_optimizers" not in source
    result = run("search", write_script(source), "--trials", "1", *FAST)
    assert result.exit_code == 0, result.output
    assert load(storage_url, "model").get_trials()[0].state.name == "COMPLETE"


def test_max_epochs_becomes_a_step_budget(storage_url):
    """TinyData has 448 training samples: batch 16 gives 28 batches, so 2 epochs are 56 steps."""
    result = run("search", TINY, "--trials", "1", "--max-epochs", "2", "--evaluations", "2")
    assert result.exit_code == 0, result.output
    (trial,) = load(storage_url).get_trials()
    assert trial.user_attrs["tunekit.recipe"]["training"]["max_steps"] == 56
    assert max(trial.intermediate_values) == 56
    both = run("search", TINY, "--trials", "1", "--max-epochs", "2", "--max-steps", "10")
    assert both.exit_code == 2 and "give either --max-steps or --max-epochs, not both." in both.output
