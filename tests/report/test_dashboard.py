"""optuna-dashboard (the real server, pip ``optuna-dashboard``) reads a tunekit study as it is.

The server runs on loopback against the SQLite file of a real tiny search; its HTTP API must show
the trials with their params, values, intermediate values and tunekit's user attributes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from conftest import _free_port
from searched_study import searched_storage  # noqa: F401  (the fixture "searched")

from tunekit.study.records import ORIGIN_ATTR, RECIPE_ATTR, SETTINGS_ATTR


@pytest.fixture
def dashboard(searched: str, tmp_path: Path):
    """The optuna-dashboard server on 127.0.0.1 for the searched study; yields its base URL."""
    port = _free_port()
    command = [str(Path(sys.executable).parent / "optuna-dashboard"), searched, "--host", "127.0.0.1"]
    log = (tmp_path / "dashboard.log").open("w")
    server = subprocess.Popen([*command, "--port", str(port), "--server", "wsgiref"], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/api/meta")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"optuna-dashboard did not start: {(tmp_path / 'dashboard.log').read_text()}"
                    ) from None
                time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_dashboard_shows_tunekit_trials(searched: str, dashboard: str):
    studies = get(f"{dashboard}/api/studies")["study_summaries"]
    (listed,) = [s for s in studies if s["study_name"] == "tiny_regression"]
    detail = get(f"{dashboard}/api/studies/{listed['study_id']}?after=0")
    ours = {t.number: t for t in optuna.load_study(study_name="tiny_regression", storage=searched).get_trials()}
    assert len(detail["trials"]) == len(ours)
    for shown in detail["trials"]:
        trial = ours[shown["number"]]
        assert shown["state"] == trial.state.name.capitalize()
        assert {p["name"]: p["param_external_value"] for p in shown["params"]} == {
            k: str(v) for k, v in trial.params.items()
        }
        if trial.state.name == "COMPLETE":
            assert shown["values"] == pytest.approx([trial.value])
        assert {v["step"]: v["value"] for v in shown["intermediate_values"]} == pytest.approx(trial.intermediate_values)
        attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
        assert json.loads(attrs[RECIPE_ATTR]) == trial.user_attrs[RECIPE_ATTR]
        if ORIGIN_ATTR in trial.user_attrs:  # an Origin, stored as a dict (issue #13)
            assert json.loads(attrs[ORIGIN_ATTR]) == trial.user_attrs[ORIGIN_ATTR]
    assert any(t["intermediate_values"] for t in detail["trials"])
    study_attrs = {a["key"]: a["value"] for a in detail["user_attrs"]}
    assert json.loads(study_attrs[SETTINGS_ATTR])["metric"] == "val_loss"
