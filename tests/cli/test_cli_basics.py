"""The CLI surface: help for every command, lazy imports, python -m."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from tunekit.cli import COMMANDS, main


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_help_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from tunekit.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0\n"
        "heavy = [m for m in ('torch', 'lightning', 'optuna', 'sqlalchemy', 'rich') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_and_unknown_command():
    result = subprocess.run([sys.executable, "-m", "tunekit", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "No such command 'nope'" in result.stderr


def test_catalog_lists_registries():
    optimizers = CliRunner().invoke(main, ["optimizers"])
    assert optimizers.exit_code == 0 and "adamw" in optimizers.output and "schedulefree_adamw" in optimizers.output
    schedules = CliRunner().invoke(main, ["schedules"])
    assert schedules.exit_code == 0 and "wsd" in schedules.output and "rex" in schedules.output
