"""Storage and settings on temporary SQLite files: create, continue, disagree, reap dead workers."""

from __future__ import annotations

import time
from dataclasses import replace

import optuna
import pytest

from tunekit.errors import BadInput
from tunekit.search_spaces.space import SpaceConfig
from tunekit.study.records import WORKER_DIED, origin_of, reason_of, retry_of
from tunekit.study.settings import StudySettings, create_or_continue, open_study
from tunekit.study.storage import fail_and_retry, open_storage, reap_dead_workers
from tunekit.training.script import ScriptSpec

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")


def settings(**space) -> StudySettings:
    config = SpaceConfig(["adamw"], ["wsd"], 1e-3, space.pop("max_steps", 40), **space)
    return StudySettings(ScriptSpec("/x/model.py"), "val_loss", "minimize", config, {"law": "none"})


def test_create_then_continue_with_the_stored_settings(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study, created = create_or_continue(storage, "s", settings(), set())
    assert created == settings()
    # Not given: the stored max_steps stands; given and different: refused, naming the option.
    _, continued = create_or_continue(storage, "s", settings(max_steps=80), set())
    assert continued.space.max_steps == 40
    with pytest.raises(BadInput, match="created with --max-steps 40, not 80"):
        create_or_continue(storage, "s", settings(max_steps=80), {"max_steps"}, spell=lambda k: "--max-steps")
    opened, read = open_study(storage, "s")
    assert opened.study_name == "s" and read == created


def test_settings_round_trip_and_refuse_foreign_studies(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="foreign")
    with pytest.raises(BadInput, match="was not created by tunekit"):
        StudySettings.from_study(study)
    s = replace(settings(), target_trials=7)
    s.save(study)
    assert StudySettings.from_study(study) == s


@pytest.mark.slow  # waits out a real heartbeat grace period
def test_a_silent_running_trial_is_reaped_and_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEKIT_HEARTBEAT_INTERVAL", "1")
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(trial._trial_id)
    time.sleep(5.5)  # past the grace period of 4 heartbeat intervals
    reap_dead_workers(study)
    dead, retry = study.get_trials()
    assert dead.state.name == "FAIL" and reason_of(dead) == WORKER_DIED
    assert retry.state.name == "WAITING" and origin_of(retry) == retry_of(dead.number, "worker died")
    assert retry.params == dead.params
    assert not fail_and_retry(storage, study, dead)  # already finished


def test_unknown_study_lists_the_others(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    optuna.create_study(storage=storage, study_name="a")
    with pytest.raises(BadInput, match=r"no study 'b' in this storage \(studies: a\)"):
        open_study(storage, "b")


def test_sqlite_connections_sync_at_checkpoints_only(tmp_path):
    """WAL with synchronous=NORMAL on every pooled connection (issue #11): no fsync per commit."""
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    connections = [storage.engine.raw_connection() for _ in range(2)]  # two pooled DB-API connections
    try:
        for conn in connections:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        for conn in connections:
            conn.close()
