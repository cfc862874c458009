"""Study storage: any Optuna RDB URL, SQLite by default.

Heartbeats are on for every storage so trials of killed workers are detected and retried with the
same parameters instead of staying RUNNING (Optuna 5's TPE treats RUNNING trials as constant liars,
so zombies would bias sampling; literature.md, "Practice").
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from tunekit.errors import BadInput

DEFAULT_STORAGE = "sqlite:///tunekit.db"
STORAGE_ENV = "TUNEKIT_STORAGE"
HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 40  # a RUNNING trial silent for this long belongs to a dead worker
SQLITE_TIMEOUT = 60  # seconds a writer waits for the lock instead of failing with "database is locked"


def resolve_url(url: str | None) -> str:
    """The storage URL: the option, else ``$TUNEKIT_STORAGE``, else ``sqlite:///tunekit.db`` here."""
    return url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other backends and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _prepare_sqlite(path: Path) -> None:
    """Check that an existing file is SQLite, and switch it to WAL so readers never block writers."""
    if path.exists():
        with path.open("rb") as f:
            header = f.read(16)
        if path.stat().st_size > 0 and header != b"SQLite format 3\x00":
            raise BadInput(f"'{path}' is not a SQLite database; give another file in --storage sqlite:///FILE.")
    elif not path.parent.exists():
        raise BadInput(
            f"folder '{path.parent}' of the storage file does not exist; create it or choose another --storage."
        )
    try:
        with sqlite3.connect(path, timeout=SQLITE_TIMEOUT) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"'{path}' cannot be used as a SQLite database ({exc}); give another --storage file.") from None


def open_storage(url: str) -> Any:
    """An Optuna ``RDBStorage`` for ``url`` with heartbeats and stale-trial retry.

    Raises:
        BadInput: the URL is malformed, the server cannot be reached, or the file is not SQLite.
    """
    import optuna
    import sqlalchemy.exc

    engine_kwargs: dict[str, Any] = {}
    path = sqlite_path(url)
    if path is not None:
        _prepare_sqlite(path)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT}
    elif url.startswith("postgresql"):
        engine_kwargs["pool_pre_ping"] = True
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_INTERVAL,
            grace_period=GRACE_PERIOD,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError, ValueError) as exc:
        raise BadInput(
            f"storage URL '{url}' is not a valid SQLAlchemy URL ({exc}); use e.g. sqlite:///tunekit.db."
        ) from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.DatabaseError) as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        raise BadInput(
            f"storage '{url}' cannot be opened ({reason}); check the URL and that the server is running."
        ) from None
    except ImportError as exc:
        raise BadInput(
            f"storage '{url}' needs a database driver that is not installed ({exc}); install it with pip."
        ) from None


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
