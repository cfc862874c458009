"""Reading a LightningCLI config for search (issue #15): forms, overrides, and one-sentence refusals."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main
from tunekit.errors import BadInput
from tunekit.training.cli_config import read_cli_config
from tunekit.training.script import ScriptSpec, load_script


def config_file(tmp_path, data) -> str:
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    "class_path", ["TinyRegression", "__main__.TinyRegression", "tests.scripts.tiny_regression.TinyRegression"]
)
def test_class_path_names_a_class_of_the_script(class_path, tmp_path):
    path = config_file(
        tmp_path, {"model": {"class_path": class_path, "init_args": {"hidden": 4}}, "data": {"batch_size": 8}}
    )
    spec = read_cli_config(path, TINY).apply(ScriptSpec(str(TINY), model_args={"hidden": 6}))
    assert spec.model == "TinyRegression" and spec.model_args == {"hidden": 6}  # --model-arg wins
    assert spec.data is None and spec.data_args == {"batch_size": 8}
    assert spec.class_paths == {"model": class_path}
    assert ScriptSpec.from_dict(spec.to_dict()) == spec  # stored with the study as it is
    loaded = load_script(spec)
    read_cli_config(path, TINY).check(loaded)
    assert loaded.build_model().net[0].out_features == 6


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"model": {"hiden": 4}},
            "config '{path}': model has unknown key 'hiden' for TinyRegression; valid keys: hidden, fail_at_step, "
            "nan_at_step, sleep, steps_file.",
        ),
        (
            {"model": {"class_path": "torchvision.models.ResNet"}},
            "config '{path}': model.class_path 'torchvision.models.ResNet' is not in the script tiny_regression.py; "
            "tunekit builds only classes defined in the script and imports no other path, so write class_path: "
            "ResNet for a class of the script.",
        ),
        (
            {"modle": {}},
            "config '{path}' has unknown key 'modle'; valid top-level keys: model, data, trainer, optimizer, "
            "lr_scheduler, seed_everything, ckpt_path.",
        ),
        (
            {"data": {"class_path": "TinyData", "batch_size": 4}},
            "config '{path}': data has 'batch_size' next to class_path; put arguments under init_args.",
        ),
    ],
)
def test_bad_config_is_refused_in_one_sentence_before_anything_is_written(data, message, tmp_path):
    path = config_file(tmp_path, data)
    result = CliRunner().invoke(main, ["search", str(TINY), "--config", path, "--trials", "1"])
    assert result.exit_code == 2, result.output
    assert message.format(path=path) in " ".join(result.output.split())
    assert result.output.count("\n") <= 3  # one sentence, not a traceback
    assert not (tmp_path / "tunekit.db").exists()


def test_unused_sections_are_named_in_one_warning(tmp_path):
    path = config_file(tmp_path, {"trainer": {"max_steps": 10, "logger": False}, "optimizer": "Adam", "model": {}})
    config = read_cli_config(path, TINY)
    assert config.sections == {}
    assert config.warning() == (
        f"config '{path}': tunekit sets the Trainer, optimizer, schedule and seed of every trial, so it does not "
        "use trainer (logger, max_steps), optimizer; give the budget with --max-steps or --max-epochs and the "
        "seed with --seed."
    )


def test_data_section_without_a_datamodule_is_refused(tmp_path):
    script = tmp_path / "nodata.py"
    script.write_text(TINY.read_text().split("class TinyData")[0])
    config = read_cli_config(config_file(tmp_path, {"data": {"batch_size": 4}}), script)
    with pytest.raises(BadInput, match="has a data section, but the script defines no LightningDataModule; remove"):
        config.check(load_script(ScriptSpec(str(script))))
