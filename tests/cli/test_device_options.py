"""--accelerator/--devices/--strategy/--precision on search, resume and train (issue #11)."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    ("option", "sentence"),
    [
        (("--precision", "fp8"), "--precision fp8 is not a Lightning precision; use one of"),
        (("--strategy", "dpp"), "--strategy dpp is not a Lightning strategy; use one of"),
        (
            ("--devices", "2", "--strategy", "single_device"),
            "--strategy single_device cannot run a trial over --devices 2",
        ),
    ],
)
def test_bad_device_options_exit_2_and_write_nothing(tmp_path, option, sentence):
    result = run("search", TINY, "--trials", "1", *option)
    assert result.exit_code == 2, result.output
    assert sentence in " ".join(result.output.split())
    assert not (tmp_path / "tunekit.db").exists()


@pytest.mark.slow
def test_precision_travels_from_search_to_recipe_to_train(tmp_path):
    searched = run("search", TINY, "--trials", "1", "--max-steps", "8", "--accelerator", "cpu", "--precision", "64")
    assert searched.exit_code == 0, searched.output
    assert run("export", "--study", "tiny_regression", "-o", tmp_path / "r.yaml").exit_code == 0
    recipe = yaml.safe_load((tmp_path / "r.yaml").read_text())
    assert recipe["training"]["precision"] == "64-true"
    trained = run("train", tmp_path / "r.yaml", TINY, "--accelerator", "cpu")
    assert trained.exit_code == 0, trained.output
    assert "difference +0.00e+00" in trained.output  # the same float64 run again
    other = run("search", TINY, "--trials", "1", "--max-steps", "8", "--precision", "32")
    assert other.exit_code == 2
    assert "was created with --precision 64-true, not 32-true" in " ".join(other.output.split())
    resumed = run("resume", "--study", "tiny_regression", "--trials", "1", "--accelerator", "cpu")
    assert resumed.exit_code == 0, resumed.output
