"""The study the report tests read: a real tiny search, made once per test module.

Imported as a fixture by the report test modules (a second conftest.py would shadow the top one's
``from conftest import ...``).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main

TRIALS = 10


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module", name="searched")
def searched_storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A storage URL holding study ``tiny_regression``: a real search of TRIALS tiny trials."""
    url = f"sqlite:///{tmp_path_factory.mktemp('searched') / 'tunekit.db'}"
    done = run("search", TINY, "--trials", TRIALS, "--max-steps", 20, "--evaluations", 2, "--storage", url)
    assert done.exit_code == 0, done.output
    return url
