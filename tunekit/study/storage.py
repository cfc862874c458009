"""Study storage: any Optuna RDB URL, SQLite by default.

Heartbeats are on for every storage so trials of killed workers are detected and retried with the
same parameters instead of staying RUNNING (Optuna 5's TPE treats RUNNING trials as constant liars,
so zombies would bias sampling; Optuna docs, ``RDBStorage(heartbeat_interval=...)`` and
``RetryFailedTrialCallback``). A running trial's worker records a
heartbeat every ``$TUNEKIT_HEARTBEAT_INTERVAL`` seconds (default 10); a RUNNING trial silent for
``HEARTBEAT_GRACE_FACTOR`` intervals (default 40 s) belongs to a dead worker. It is then marked
FAIL and queued again with the same parameters, by whichever ``search``/``resume`` worker looks
next (every worker looks before each trial and while it waits).

SQLite is safe for several worker processes on one machine only with three settings:
- WAL journal, so readers never block the writer;
- a busy timeout, so a writer waits for the lock instead of failing with "database is locked";
- ``BEGIN IMMEDIATE`` transactions. Python's sqlite3 module starts a transaction only at the first
  write, so Optuna's read-then-update steps (``SELECT ... FOR UPDATE``, which SQLite ignores;
  optuna/optuna#1014) are not atomic: with 6 processes asking at once, the same queued trial was
  handed to 2-6 of them in 8 of 10 rounds. With the write lock taken at ``BEGIN`` (SQLAlchemy's
  pysqlite docs, "Serializable isolation / Savepoints / Transactional DDL"), 0 of 10.

Each connection also sets ``synchronous=NORMAL`` (issue #11): with the default FULL, every commit
(each report, user attribute, parameter, heartbeat) waits for an fsync of the WAL, which was the
largest part of a trial's fixed cost on this machine. In WAL mode NORMAL syncs only at checkpoints,
keeps the database consistent, and loses no committed transaction when a process crashes or is
killed; only an operating-system crash or power loss may roll back the last commits (SQLite docs,
https://www.sqlite.org/pragma.html#pragma_synchronous and https://www.sqlite.org/wal.html,
"Performance Considerations"). A trial lost that way is what a dead worker leaves: retried.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput
from tunekit.study.records import requeue, retry_of

DEFAULT_STORAGE = "sqlite:///tunekit.db"
STORAGE_ENV = "TUNEKIT_STORAGE"
HEARTBEAT_ENV = "TUNEKIT_HEARTBEAT_INTERVAL"
HEARTBEAT_INTERVAL = 10  # default seconds between a running trial's heartbeats
HEARTBEAT_GRACE_FACTOR = 4  # a RUNNING trial silent for this many intervals belongs to a dead worker
MAX_RETRIES_OF_DEAD_TRIAL = 3  # a trial that killed its worker this often is not queued again
SQLITE_TIMEOUT = 60  # seconds a writer waits for the lock instead of failing with "database is locked"
# Past this many workers on one SQLite file, they mostly queue for its single write lock (every
# report, heartbeat and progress update is a write; TPE reads all trials before each one).
SQLITE_SENSIBLE_WORKERS = 4
# Tables Optuna creates; a SQLite file holding other tables belongs to another program.
OPTUNA_TABLES = {"studies", "trials", "alembic_version", "version_info", "study_directions"}


def resolve_url(url: str | None) -> str:
    """The storage URL: the option, else ``$TUNEKIT_STORAGE``, else ``sqlite:///tunekit.db`` here."""
    return url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other backends and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def heartbeat_interval() -> int:
    """Seconds between heartbeats: ``$TUNEKIT_HEARTBEAT_INTERVAL`` (a positive integer) or 10.

    Raises:
        BadInput: the variable is set to something else.
    """
    raw = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not raw:
        return HEARTBEAT_INTERVAL
    if not raw.isdigit() or int(raw) < 1:
        raise BadInput(f"{HEARTBEAT_ENV}={raw!r} is not a whole number of seconds >= 1; unset it or give e.g. 10.")
    return int(raw)


def grace_period() -> int:
    """Seconds without a heartbeat after which a RUNNING trial's worker is taken for dead."""
    return HEARTBEAT_GRACE_FACTOR * heartbeat_interval()


def _check_sqlite_file(path: Path) -> set[str]:
    """Refuse a file that is not SQLite, is corrupt, or is another program's database, writing nothing.

    Returns the file's tables (none for a file not created yet, or empty).
    """
    tables: set[str] = set()
    if path.exists():
        if path.is_dir():
            raise BadInput(f"'{path}' is a folder, not a SQLite file; give a file in --storage sqlite:///FILE.")
        if path.stat().st_size == 0:
            return tables
        with path.open("rb") as f:
            header = f.read(16)
        if header != b"SQLite format 3\x00":
            raise BadInput(f"'{path}' is not a SQLite database; give another file in --storage sqlite:///FILE.")
        sidecars = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        absent = [p for p in sidecars if not p.exists()]
        try:  # read-only, so a damaged or foreign file is never modified
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=SQLITE_TIMEOUT)
            try:
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                conn.execute("PRAGMA quick_check(1)").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            wal = sidecars[0]
            if wal in absent and (not wal.exists() or wal.stat().st_size == 0):
                for p in absent:  # a WAL-mode header makes even a read-only open create them: clean up
                    p.unlink(missing_ok=True)
            raise BadInput(
                f"'{path}' is a damaged SQLite database ({exc}); restore it from a backup or give another --storage file."
            ) from None
        if tables and not tables & OPTUNA_TABLES:
            listed = ", ".join(sorted(tables)[:5])
            raise BadInput(
                f"'{path}' is another program's SQLite database (tables: {listed}); give a new file in --storage."
            )
    elif not path.parent.exists():
        raise BadInput(
            f"folder '{path.parent}' of the storage file does not exist; create it or choose another --storage."
        )
    return tables


def peek_storage(url: str) -> Any | None:
    """A storage to read what ``url`` already holds, writing nothing; None when it holds no complete
    Optuna schema (a SQLite file not created yet, an empty server database), cannot be used
    (``open_storage`` says why), or is in-memory SQLite.

    Optuna's ``RDBStorage`` creates missing tables and records its version when they are absent,
    so it is opened only on a database that has them all, without table creation; ``open_storage``
    also switches SQLite to WAL, which this does not.
    """
    import optuna
    import sqlalchemy

    try:
        if is_sqlite(url):
            path = sqlite_path(url)
            tables = set() if path is None else _check_sqlite_file(path)
        else:
            engine = sqlalchemy.create_engine(url)
            try:
                tables = set(sqlalchemy.inspect(engine).get_table_names())
            finally:
                engine.dispose()
        if not OPTUNA_TABLES <= tables:
            return None
        return optuna.storages.RDBStorage(url, skip_table_creation=True)
    except Exception:  # noqa: BLE001 - a damaged file, a server that cannot be reached: open_storage says which
        return None


def _use_wal(path: Path) -> None:
    try:
        with sqlite3.connect(path, timeout=SQLITE_TIMEOUT) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"'{path}' cannot be used as a SQLite database ({exc}); give another --storage file.") from None


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sync_at_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    """``synchronous=NORMAL`` on a new pysqlite connection (a per-connection setting; see the module docstring)."""
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def open_storage(url: str) -> Any:
    """An Optuna ``RDBStorage`` for ``url`` with heartbeats and retry of dead workers' trials.

    Creating the schema is retried when several processes create it at once on a fresh database
    (they race on ``alembic_version``: optuna/optuna issues #1092 and #4621).

    Raises:
        BadInput: the URL is malformed, the server cannot be reached, the file is not a usable
            SQLite database, or ``$TUNEKIT_HEARTBEAT_INTERVAL`` is invalid.
    """
    import optuna
    import sqlalchemy.event
    import sqlalchemy.exc

    interval = heartbeat_interval()
    engine_kwargs: dict[str, Any] = {}
    path = sqlite_path(url)
    if path is not None:
        _check_sqlite_file(path)
        _use_wal(path)
    if is_sqlite(url):
        # isolation_level=None: pysqlite emits no BEGIN of its own; _begin_immediate emits ours.
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT, "isolation_level": None}
    elif url.startswith("postgresql"):
        engine_kwargs["pool_pre_ping"] = True
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=interval,
                    grace_period=HEARTBEAT_GRACE_FACTOR * interval,
                    heartbeat_stale_trial_callback=RetryDeadWorkerTrial(max_retry=MAX_RETRIES_OF_DEAD_TRIAL),
                )
            break
        except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as exc:
            raise BadInput(
                f"storage URL '{url}' is not a valid SQLAlchemy URL ({exc}); use e.g. sqlite:///tunekit.db."
            ) from None
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.DatabaseError) as exc:
            reason = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
            racing = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in reason
            if racing and attempt < 5:  # another process is creating the same schema right now
                time.sleep(0.1 + 0.4 * random.random())
                continue
            raise BadInput(
                f"storage '{url}' cannot be opened ({reason}); check the URL and that the server is running."
            ) from None
        except ImportError as exc:
            raise BadInput(
                f"storage '{url}' needs a database driver that is not installed ({exc}); install it with pip."
            ) from None
    if is_sqlite(url):
        sqlalchemy.event.listen(storage.engine, "begin", _begin_immediate)
        sqlalchemy.event.listen(storage.engine, "connect", _sync_at_checkpoints)
        storage.engine.dispose()  # the schema check's pooled connections predate the listener
    return storage


class RetryDeadWorkerTrial:
    """Queue a dead worker's trial again with the same parameters (at most ``max_retry`` times).

    Optuna's ``RetryHeartbeatStaleTrialCallback`` with two changes: the retry carries only its
    origin (a retry of trial N, worker died), not the dead attempt's progress and worker, and the
    same ``failed_trial``/``retry_history`` system attributes, so Optuna's helpers still read them.
    """

    def __init__(self, max_retry: int | None = None):
        self.max_retry = max_retry

    def __call__(self, study: Any, trial: Any) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if self.max_retry is not None and len(history) > self.max_retry:
            return
        system_attrs = {**trial.system_attrs, "failed_trial": history[0], "retry_history": history}
        requeue(study, trial, retry_of(trial.number, "worker died"), system_attrs)


def reap_dead_workers(study: Any) -> None:
    """Fail the study's RUNNING trials whose heartbeat stopped, and queue them again."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


# --- Optuna internals: the only place tunekit uses a trial's storage id (issue #13) ---------------


def record_heartbeat(storage: Any, trial: Any) -> None:
    """Record one heartbeat of the running ``trial`` now (Optuna's thread may not have yet)."""
    storage.record_heartbeat(trial._trial_id)


def fail_and_retry(storage: Any, study: Any, trial: Any) -> bool:
    """Fail the RUNNING ``trial`` and queue it again as a dead worker's; False if it had finished.

    Raises nothing when another process finished or failed it in the meantime.
    """
    import optuna

    try:
        failed = storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # it finished (or another worker failed it) in the meantime
    if failed:
        storage.get_heartbeat_stale_trial_callback()(study, storage.get_trial(trial._trial_id))
    return bool(failed)


def study_names(storage: Any) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def load_existing_study(storage: Any, name: str) -> Any:
    """The study called ``name``.

    Raises:
        BadInput: no such study; the message lists the studies in the storage.
    """
    import optuna

    names = study_names(storage)
    if name not in names:
        listed = ", ".join(names) if names else "none yet"
        raise BadInput(f"no study '{name}' in this storage (studies: {listed}); check --study and --storage.")
    return optuna.load_study(study_name=name, storage=storage)
