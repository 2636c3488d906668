"""Where a study lives: a database URL (SQLite in the study directory by default, PostgreSQL
through psycopg2 to share a search between machines). Opening it is serialised between
processes (creating Optuna's schema is check-then-create), a password never reaches a message
or a record, and a URL that cannot be opened is one error naming it and the cause."""

from __future__ import annotations

import contextlib
import fcntl
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from .objectives import SearchConfigError

# SQLAlchemy 2.1 maps a plain postgresql:// to psycopg (3); the postgres extra installs
# psycopg2, so a URL without a driver gets that one
PG_DRIVER = "psycopg2"
PG_CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_TIMEOUT_S = 120
LOCK_NAME = "hannah-hw"


class StorageError(SearchConfigError):
    """A storage URL that cannot be parsed or opened."""


def default_url(study_dir: Path) -> str:
    return f"sqlite:///{(Path(study_dir) / 'study.db').resolve()}"


def storage_url(study_dir: Path, storage: str | None) -> str:
    """The study's database URL: ``storage`` (checked, with its driver), else the SQLite file
    in ``study_dir``."""
    return normalise(storage) if storage else default_url(study_dir)


def masked(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages, records and keys."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: mask anything shaped like user:password@
        return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", url)


def _parse(url: str) -> URL:
    try:
        u = make_url(url)
    except Exception:
        raise StorageError(f"storage {masked(url)!r} is not a database URL (expected e.g. "
                           "postgresql://USER@HOST/DB or sqlite:///FILE)") from None
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername=f"postgresql+{PG_DRIVER}")
    try:
        u.get_dialect()
    except Exception:
        raise StorageError(f"storage {masked(url)}: unknown database type "
                           f"{u.drivername!r} (use postgresql:// or sqlite:///)") from None
    return u


def normalise(url: str) -> str:
    """The URL as SQLAlchemy opens it: a plain postgresql:// gets the installed driver."""
    return _parse(url).render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _cause(e: BaseException) -> str:
    """The first line of what went wrong, without SQLAlchemy's wrapping and links."""
    if isinstance(e, ImportError) and e.__cause__ is not None:
        e = e.__cause__
    if isinstance(e, ModuleNotFoundError):
        return f"its database driver {e.name!r} is not installed" + (
            " (pip install 'hannah-hw[postgres]')" if e.name == PG_DRIVER else "")
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(e).__name__)
    return re.sub(r"^\([\w.]+\)\s*", "", line)


# what reaching or reading a database raises; opening the storage adds Optuna's own checks
# (RuntimeError: a schema of another Optuna version; ValueError, KeyError: its URL template)
DB_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError,
             ImportError, OSError)
OPEN_ERRORS = (*DB_ERRORS, RuntimeError, ValueError, KeyError)


@contextlib.contextmanager
def opening_errors(url: str, errors: tuple[type[BaseException], ...] = DB_ERRORS
                   ) -> Iterator[None]:
    """Turn a failure to reach or read the database into one line naming the URL."""
    try:
        yield
    except SearchConfigError:
        raise
    except errors as e:
        hint = ("; remove it or use a new --study directory" if is_sqlite(url)
                and "not a database" in str(e) else "")
        raise StorageError(f"storage {masked(url)} cannot be opened: {_cause(e)}{hint}") from None


def _connect_args(url: str) -> dict:
    """Bounded waits: SQLite's for a busy database, libpq's for an unreachable server (unless
    the URL sets its own)."""
    if is_sqlite(url):
        return {"timeout": SQLITE_BUSY_TIMEOUT_S}
    if url.startswith("postgresql") and "connect_timeout" not in url:
        return {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return {}


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage on ``url`` (call it under :func:`opening_lock`: it creates tables)."""
    with opening_errors(url, OPEN_ERRORS):
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": _connect_args(url)})


@contextlib.contextmanager
def opening_lock(url: str) -> Iterator[None]:
    """Serialise opening the study between processes. Creating Optuna's schema, its version
    rows and the study with its config are each check-then-create: two processes starting at
    once on a new database collide (a duplicate ``alembic_version`` row, "table already
    exists", a duplicate key in pg_type) or one loads the study before its config is stored.
    SQLite: an flock on a file beside the database; PostgreSQL: an advisory lock."""
    if is_sqlite(url):
        db = make_url(url).database
        if not db or db == ":memory:":
            yield
            return
        lock = Path(f"{db}.lock")
        try:
            f = open(lock, "a")
        except OSError as e:
            raise StorageError(f"storage {masked(url)} cannot be opened: {e.strerror} "
                               f"({lock.parent})") from None
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)  # freed when the file closes, or the process dies
            yield
        return
    if not url.startswith("postgresql"):
        yield
        return
    key = zlib.crc32(LOCK_NAME.encode())
    with opening_errors(url):
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                          connect_args=_connect_args(url))
        con = engine.connect()
    try:  # a session-level lock; closing the connection frees it
        con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        con.commit()
        yield
    finally:
        with contextlib.suppress(Exception):
            con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        con.close()
        engine.dispose()
