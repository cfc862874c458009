"""Every bad input of issue 6: exit code 2, one clear sentence, and the database untouched.

Each case runs next to an existing study database (one trial) and compares its bytes before and
after. Unusable model scripts are covered in test_script_loader.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main
from tunekit.service.workers import available_cores

FAST = ["--max-steps", "20", "--evaluations", "2"]
GOOD_RECIPE = {
    "tunekit_recipe": 1,
    "optimizer": {"name": "adamw", "lr": 1.0e-3},
    "schedule": {"name": "cosine"},
    "training": {"max_steps": 20, "seed": 0},
}


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding study 'tiny_regression' with one finished trial (made once per module)."""
    folder = tmp_path_factory.mktemp("study")
    live = folder / "live.db"
    result = CliRunner().invoke(main, ["search", str(TINY), "--storage", f"sqlite:///{live}", "--trials", "1", *FAST])
    assert result.exit_code == 0, result.output
    snapshot = folder / "study.db"
    with sqlite3.connect(live) as src, sqlite3.connect(snapshot) as dst:
        src.backup(dst)  # complete even while the WAL is not checkpointed
    return snapshot


@pytest.fixture
def db(study_db: Path, tmp_path: Path) -> Path:
    """This test's copy of the study database, where TUNEKIT_STORAGE points."""
    path = tmp_path / "tunekit.db"
    path.write_bytes(study_db.read_bytes())
    return path


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_refused(result, sentence: str | tuple, *untouched: Path, before: list[bytes]) -> None:
    """Exit 2, the sentence (or all its fragments) on one line, no traceback, the files as they were."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    for fragment in (sentence,) if isinstance(sentence, str) else sentence:
        assert fragment in text, result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1
    assert [p.read_bytes() for p in untouched] == before


def refused(db: Path, args: list, sentence: str | tuple, *others: Path) -> None:
    files = [db, *others]
    before = [p.read_bytes() for p in files]
    assert_refused(run(*args), sentence, *files, before=before)


# --- the search's own options --------------------------------------------------------------


@pytest.mark.parametrize(
    "args, sentence",
    [
        (["--metric", "val_acc"], "the metric 'val_acc' is never logged (logged: train_loss, val_loss); log it with"),
        (["--optimizers", "adamw,adamx"], ("unknown optimizer 'adamx'", "choose from: ", "adamw, ")),
        (["--schedules", "cosine,cosinus"], ("unknown schedule 'cosinus'", "choose from: ", "wsd, ")),
        (["--optimizers", ""], "--optimizers is empty; give a comma-separated list"),
        (["--trials", "0"], "Invalid value for '--trials': 0 is not in the range x>=1."),
        (["--trials", "-3"], "Invalid value for '--trials': -3 is not in the range x>=1."),
        (["--max-steps", "0"], "Invalid value for '--max-steps': 0 is not in the range x>=1."),
        (["--max-steps", "-5"], "Invalid value for '--max-steps': -5 is not in the range x>=1."),
        (["--evaluations", "0"], "Invalid value for '--evaluations': 0 is not in the range x>=1."),
        (["--timeout", "0"], "Invalid value for '--timeout': 0.0 is not in the range x>0."),
        (["--timeout", "-60"], "Invalid value for '--timeout': -60.0 is not in the range x>0."),
        (["--jobs", "0"], "Invalid value for '--jobs': 0 is not in the range x>=1."),
        (
            ["--jobs", str(available_cores() + 1)],
            f"--jobs {available_cores() + 1} is more than the {available_cores()} CPU core(s) here",
        ),
        (["--ray", "auto"], "--ray runs the workers on the Ray cluster's machines, which cannot share a SQLite file"),
        (
            ["--devices", "2", "--strategy", "single_device"],
            "--strategy single_device cannot run a trial over --devices 2; use --strategy ddp",
        ),
        # issue #9
        (["--fidelity", "hyperband"], "--fidelity hyperband is not a fidelity; use full (whole runs) or sh"),
        (["--fidelity", "sh", "--min-steps", "30"], "--min-steps 30 is outside 1..20 (the --max-steps budget)"),
        (["--fidelity", "sh", "--eta", "1"], "--eta 1 keeps every trial at every rung; use --eta 2 or more"),
        (["--fidelity", "sh", "--also", "seconds"], "--fidelity sh does not combine with --also; drop one of them."),
        (
            ["--min-steps", "5"],
            "--min-steps, --eta and --budget-bound set the rungs of --fidelity sh; add --fidelity sh, or drop them.",
        ),
        (["--fidelity", "sh", "--budget-bound", "squeeze"], "--budget-bound squeeze is not a rule; use own-schedule"),
        (
            ["--fidelity", "full", "--budget-bound", "own-schedule"],
            "--min-steps, --eta and --budget-bound set the rungs of --fidelity sh; add --fidelity sh, or drop them.",
        ),
        (["--from-study", "nope"], "no study 'nope' in sqlite:///"),
        (["--from-study", "tiny_regression"], "--from-study names the study being run ('tiny_regression')"),
        (["--fidelity", "sh"], "study 'tiny_regression' was created with --fidelity full, not sh"),
    ],
)
def test_bad_search_options(args, sentence, db):
    refused(db, ["search", TINY, *FAST, *args], sentence)


@pytest.mark.parametrize(
    "args, sentence",
    [
        (["--trials", "0"], "Invalid value for '--trials': 0 is not in the range x>=1."),
        (["--jobs", str(available_cores() + 1)], "is more than the"),
        (["--timeout", "-1"], "Invalid value for '--timeout'"),
    ],
)
def test_bad_resume_options(args, sentence, db):
    refused(db, ["resume", "--study", "tiny_regression", *args], sentence)


# --- search-space files -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, sentence",
    [
        ("adamw.lr: {low: 1.0e-4, high: 1.0e-2\n", "is not valid YAML; fix the syntax."),
        ("- adamw.lr\n- sgd.lr\n", "must be a mapping of parameter names to ranges"),
        ("adamw.lrr: {low: 1.0e-4, high: 1.0e-2, log: true}\n", "name unknown parameter(s) ['adamw.lrr']; valid: "),
        ("adamw.lr: {low: fast, high: 1.0e-2}\n", "parameter 'adamw.lr': low and high must be numbers, got 'fast'."),
        (
            "adamw.lr: {min: 1.0e-4, max: 1.0e-2}\n",
            "parameter 'adamw.lr' has keys ['max', 'min']; write {low, high, log}",
        ),
        ("adamw.lr: {low: 1.0e-2, high: 1.0e-4}\n", "range [0.01, 0.0001] is empty or not finite; give low <= high."),
        ("adamw.lr: {low: 0.0, high: 1.0e-2, log: true}\n", "log range [0.0, 0.01] must be positive"),
        ("adamw.lr: {low: 1.0e-4, high: 1.0e-2, log: yes please}\n", "log must be true or false"),
        ("gradient_clip_val: {choices: 1.0}\n", "parameter 'gradient_clip_val': choices must be a list, got 1.0."),
        ("adamw.lr: 3.0e-3\n", "parameter 'adamw.lr' must be a mapping {low, high, log} or {choices}, got 0.003."),
    ],
)
def test_bad_space_files(text, sentence, db, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(text)
    refused(db, ["search", TINY, *FAST, "--space", space], sentence)


def test_missing_space_file(db, tmp_path):
    refused(db, ["search", TINY, *FAST, "--space", tmp_path / "none.yaml"], "space file '")


# --- recipes (tunekit train) ----------------------------------------------------------------


def _recipe(**sections):
    data = yaml.safe_load(yaml.safe_dump(GOOD_RECIPE))
    for name, change in sections.items():
        if change is None:
            data.pop(name)
        elif isinstance(change, dict):
            data[name].update(change)
        else:
            data[name] = change
    return data


@pytest.mark.parametrize(
    "data, sentence",
    [
        (_recipe(tunekit_recipe=2), "has tunekit_recipe: 2; this tunekit reads version 1"),
        (_recipe(training=None), "is missing the 'training' section (a mapping)."),
        (_recipe(training={"max_steps": "many"}), "training.max_steps must be int, got 'many'."),
        (_recipe(training={"max_steps": 0}), "training.max_steps must be at least 1, got 0."),
        (_recipe(optimizer={"lr": "fast"}), "optimizer 'adamw': lr must be like its default"),
        (_recipe(optimizer={"name": "adamx"}), ("unknown optimizer 'adamx'", "choose from: ", "adamw, ")),
        (_recipe(schedule={"name": "cosinus"}), "unknown schedule 'cosinus'"),
        (_recipe(optimizer={"name": "os.system"}), "unknown optimizer 'os.system'"),
    ],
)
def test_bad_recipes(data, sentence, db, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    refused(db, ["train", recipe, TINY], sentence, recipe)


def test_recipe_cannot_run_code(db, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("tunekit_recipe: !!python/object/apply:os.system ['touch pwned']\n")
    refused(db, ["train", recipe, TINY], "is not valid YAML", recipe)
    assert not (tmp_path / "pwned").exists()


def test_train_with_zero_budget(db, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(GOOD_RECIPE))
    refused(db, ["train", recipe, TINY, "--max-steps", "0"], "Invalid value for '--max-steps': 0 is not in the range")


# --- storages and studies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, sentence",
    [
        ("postgresql+psycopg2://nobody@127.0.0.1:1/none", "cannot be opened ("),
        ("notadb://somewhere/x", "is not a valid SQLAlchemy URL"),
        ("sqlite:////no/such/folder/x.db", "folder '/no/such/folder' of the storage file does not exist"),
        ("mysql+nosuchdriver://u@localhost/x", "storage URL 'mysql+nosuchdriver://u@localhost/x' is not a valid"),
    ],
)
def test_storage_that_cannot_be_opened(url, sentence, db):
    refused(db, ["search", TINY, *FAST, "--storage", url], sentence)
    refused(db, ["studies", "--storage", url], sentence)
    assert not Path("/no/such/folder").exists()


@pytest.mark.parametrize("command", [["resume"], ["export"], ["show"], ["export", "--top", "2"]])
def test_unknown_study_lists_the_studies(command, db):
    refused(db, [*command, "--study", "nope"], "no study 'nope' in this storage (studies: tiny_regression)")


def _another_programs_db(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.close()


@pytest.mark.parametrize(
    "kind, sentence",
    [
        ("text", "is not a SQLite database; give another file in --storage sqlite:///FILE."),
        ("garbage", "is a damaged SQLite database ("),
        ("truncated", "is a damaged SQLite database ("),
        ("foreign", "is another program's SQLite database (tables: customers); give a new file"),
    ],
)
def test_corrupt_or_foreign_sqlite_files(kind, sentence, db, study_db, tmp_path):
    target = tmp_path / "given.db"
    if kind == "text":
        target.write_text("these are my notes, not a database\n")
    elif kind == "garbage":
        target.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)
    elif kind == "truncated":
        target.write_bytes(study_db.read_bytes()[:6000])
    else:
        _another_programs_db(target)
    for command in (["search", TINY, *FAST], ["resume", "--study", "tiny_regression"], ["studies"]):
        refused(db, [*command, "--storage", f"sqlite:///{target}"], sentence, target)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("given")) == ["given.db"]  # no -wal/-journal
