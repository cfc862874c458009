"""The application service on its own: prepare_search loads everything once and writes nothing
until every check passed; prepare_resume and open_run rebuild the same run from the study."""

from __future__ import annotations

import sys

import optuna
import pytest
from conftest import TINY

from tunekit.errors import BadInput
from tunekit.service.search import ResumeRequest, SearchRequest, prepare_resume, prepare_search
from tunekit.service.setting_names import settings_given
from tunekit.training.fit import RunOptions
from tunekit.training.script import ScriptSpec

COUNTING = (
    TINY.read_text()
    .replace(
        "        super().__init__()\n        self.net",
        "        super().__init__()\n        global BUILT\n        BUILT += 1\n        self.net",
    )
    .replace("class TinyRegression(", "BUILT = 0\n\n\nclass TinyRegression(")
)


def request(script, storage_url, **kw) -> SearchRequest:
    kw.setdefault("options", RunOptions("cpu"))
    return SearchRequest(script=ScriptSpec(str(script)), study_name="s", url=storage_url, max_steps=20, **kw)


def test_the_model_is_built_once_before_the_study(write_script, storage_url):
    """Prior measurement and --max-epochs share one module on the meta device (issues #13, #11);
    the one-batch check builds the one real module."""
    script = write_script(COUNTING)
    prepared, n_trials = prepare_search(
        request(
            script,
            storage_url,
            max_epochs=1,
        )
    )
    module = sys.modules[prepared.script.model_cls.__module__]
    assert module.BUILT == 2
    shapes_only, _ = prepared.script.probe(16)
    assert {p.device.type for p in shapes_only.parameters()} == {"meta"}
    assert n_trials == 20 and prepared.settings.space.max_steps == 28  # 448 samples / batch 16
    assert prepared.space.config == prepared.settings.space


def test_bad_input_writes_nothing(storage_url, tmp_path):
    with pytest.raises(BadInput, match="give either --max-steps or --max-epochs"):
        prepare_search(request(TINY, storage_url, max_epochs=1, given=frozenset({"max_steps"})))
    with pytest.raises(BadInput, match="unknown optimizer 'adamx'"):
        prepare_search(request(TINY, storage_url, optimizers="adamx"))
    assert not (tmp_path / "tunekit.db").exists()


def test_resume_opens_the_prepared_run_from_the_study(storage_url):
    prepared, _ = prepare_search(request(TINY, storage_url, seed=3))
    resumed = prepare_resume(ResumeRequest("s", storage_url, options=RunOptions("cpu")))
    assert resumed.settings == prepared.settings and resumed.space.config == prepared.space.config
    assert resumed.add_trials(2) == 2 and resumed.remaining == 2
    assert optuna.load_study(study_name="s", storage=storage_url).user_attrs["tunekit.settings"]["target_trials"] == 2


def test_settings_given_maps_options_to_setting_names():
    assert settings_given({"--max-steps", "--space", "--model-arg", "--trials"}) == {
        "max_steps",
        "overrides",
        "model_args",
    }


def test_device_options_are_stored_and_reused(storage_url):
    """Issue #11: resume reuses the stored device options; precision is part of the experiment."""
    options = RunOptions.parse(accelerator="cpu", precision="64")
    prepared, _ = prepare_search(request(TINY, storage_url, options=options, run_given=frozenset({"precision"})))
    assert prepared.settings.run == {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "64-true"}
    resumed = prepare_resume(ResumeRequest("s", storage_url))
    assert resumed.options == RunOptions("cpu", 1, "auto", "64-true")
    again, _ = prepare_search(request(TINY, storage_url, options=RunOptions("cpu", strategy="ddp")))
    assert again.options.precision == "64-true"  # not typed: the study's
    with pytest.raises(BadInput, match="was created with --precision 64-true, not 32-true; run with the same"):
        prepare_search(request(TINY, storage_url, options=RunOptions("cpu"), run_given=frozenset({"precision"})))
    with pytest.raises(BadInput, match="was created with --precision 64-true, not bf16-mixed; resume with the same"):
        prepare_resume(
            ResumeRequest(
                "s", storage_url, options=RunOptions(precision="bf16-mixed"), run_given=frozenset({"precision"})
            )
        )
