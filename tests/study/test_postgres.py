"""PostgreSQL for real: a throwaway server on loopback (conftest ``postgres_server``), several
``tunekit`` processes on one study, as on several machines sharing one storage URL.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_parallel import SLOW, TRIALS, assert_study_complete, start, study_exists, wait_until

from tunekit.cli import main
from tunekit.study.records import WORKER_ATTR

pytestmark = pytest.mark.slow  # end to end: real CLI runs (issue #13)


def test_four_processes_on_postgresql(faulty_script, postgres_url, tmp_path):
    first = start(["search", str(faulty_script), "--trials", str(TRIALS), *SLOW], tmp_path, postgres_url)
    wait_until(lambda: study_exists(postgres_url), [first])
    others = [start(["resume", "--study", "faulty"], tmp_path, postgres_url) for _ in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in [first, *others]]
    for p, output in zip([first, *others], outputs, strict=True):
        assert p.returncode == 0, output
    trials = assert_study_complete(postgres_url, outputs)
    # The processes really shared the study (the first one starts trials while the others import torch).
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) >= 2

    shown = CliRunner().invoke(main, ["show", "--study", "faulty", "--storage", postgres_url])
    assert shown.exit_code == 0 and "COMPLETE" in shown.output


def test_a_database_that_does_not_exist_is_bad_input(postgres_server):
    url = f"{postgres_server}/no_such_database"
    result = CliRunner().invoke(main, ["studies", "--storage", url])
    assert result.exit_code == 2, result.output
    assert 'cannot be opened (connection to server at "127.0.0.1"' in " ".join(result.output.split())
    assert 'database "no_such_database" does not exist' in " ".join(result.output.split())


def test_a_refused_search_writes_nothing_to_an_empty_server_database(postgres_url):
    """``search`` reads a study's stored settings before its checks (``peek_storage``); on an empty
    server database that must create nothing (Optuna's ``RDBStorage`` would create its tables)."""
    import sqlalchemy
    from conftest import TINY

    from tunekit.study.settings import existing_settings
    from tunekit.study.storage import peek_storage

    assert peek_storage(postgres_url) is None and existing_settings(postgres_url, "tiny_regression") is None
    refused = CliRunner().invoke(main, ["search", str(TINY), "--from-study", "nope", "--storage", postgres_url])
    assert refused.exit_code == 2 and "no study 'nope'" in refused.output, refused.output
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
