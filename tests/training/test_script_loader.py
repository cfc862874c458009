"""Every unusable model script gets one sentence naming the problem and the fix, and exit code 2."""

from __future__ import annotations

import optuna
import pytest
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main
from tunekit.errors import BadInput
from tunekit.training.script import ScriptSpec, load_script, parse_assignments

HEADER = "import lightning.pytorch as pl\n"
MODULE = "class M{n}(pl.LightningModule):\n    pass\n"


@pytest.mark.parametrize(
    "source, message",
    [
        (None, "does not exist; pass the path of a Python file that defines a LightningModule."),
        ("def f(:\n", "has a syntax error at line 1"),
        (
            "import not_a_real_package_xyz\n",
            "failed to import (line 1): ModuleNotFoundError: No module named 'not_a_real_package_xyz'; install the missing package",
        ),
        ("raise ValueError('bad config')\n", "failed to import (line 1): ValueError: bad config; fix the script."),
        (HEADER + "x = 1\n", "defines no LightningModule subclass; define one in it or pass --model CLASS."),
        (
            HEADER + MODULE.format(n=1) + MODULE.format(n=2),
            "defines 2 LightningModule subclasses (M1, M2); choose one with --model NAME.",
        ),
    ],
)
def test_unusable_scripts(source, message, write_script, tmp_path, storage_url):
    path = write_script(source) if source is not None else tmp_path / "missing.py"
    result = CliRunner().invoke(main, ["search", str(path), "--trials", "1"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert result.output.count("\n") <= 3  # one sentence, not a traceback
    assert optuna.get_all_study_names(storage_url) == []


def test_model_and_data_are_picked_and_built_with_args():
    loaded = load_script(ScriptSpec(str(TINY), model_args={"hidden": 4}))
    assert loaded.model_cls.__name__ == "TinyRegression" and loaded.data_cls.__name__ == "TinyData"
    assert loaded.tunable_batch_size and loaded.default_batch_size == 16
    assert loaded.build_model().net[0].out_features == 4
    assert loaded.build_data(batch_size=8).batch_size == 8


def test_unknown_model_class_and_argument():
    with pytest.raises(BadInput, match="has no LightningModule class 'Nope' \\(found: TinyRegression\\); fix --model"):
        load_script(ScriptSpec(str(TINY), model="Nope"))
    loaded = load_script(ScriptSpec(str(TINY), model_args={"widht": 3}))
    with pytest.raises(BadInput, match="TinyRegression takes no argument widht; valid --model-arg names: hidden, "):
        loaded.build_model()


def test_sibling_imports_work(write_script):
    write_script("WIDTH = 5\n", name="helpers.py")
    path = write_script(HEADER + "from helpers import WIDTH\n" + MODULE.format(n=1))
    assert load_script(ScriptSpec(str(path))).model_cls.__name__ == "M1"


def test_assignments_split_on_first_equals_and_parse_yaml_scalars():
    parsed = parse_assignments(["a=3", "b=1e-3", "c=x=y", "d=true", "e=[1, 2]"], "--model-arg")
    assert parsed == {"a": 3, "b": 1e-3, "c": "x=y", "d": True, "e": [1, 2]}
    with pytest.raises(BadInput, match="is not of the form key=value"):
        parse_assignments(["novalue"], "--model-arg")


def test_a_constructor_that_raises_is_bad_input(write_script, storage_url):
    path = write_script(
        HEADER + "class M(pl.LightningModule):\n    def __init__(self):\n        raise ValueError('no GPU')\n"
    )
    result = CliRunner().invoke(main, ["search", str(path), "--trials", "1"])
    assert result.exit_code == 2
    assert "building M failed: ValueError: no GPU; fix the script or its --model-arg values." in result.output
    assert optuna.get_all_study_names(storage_url) == []
