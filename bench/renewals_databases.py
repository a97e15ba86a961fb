"""Fresh databases for the renewals bench: SQLite files in a temporary folder, or
databases on a PostgreSQL server that the bench creates and drops."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import tempfile
from contextlib import suppress
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tabkeeper.db.engine import make_engine, normalize_url


class Databases:
    """Fresh databases of one kind: `create` an empty one, `copy` a seeded one."""

    name: str

    def create(self, label: str) -> str:
        raise NotImplementedError

    def copy(self, source: str, label: str) -> str:
        raise NotImplementedError

    def drop(self, url: str) -> None:
        raise NotImplementedError

    def settle(self, url: str) -> None:
        """Make the seeded database `url` look like a live one, before it is copied."""

    def close(self) -> None:
        """Drop whatever is left."""

    def describe(self) -> str:
        raise NotImplementedError


class SqliteDatabases(Databases):
    """Files in a temporary folder, WAL, as tabkeeper runs them (db/engine.py)."""

    name = "sqlite"

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tabkeeper-bench-"))

    def create(self, label: str) -> str:
        return f"sqlite:///{self.folder / f'{label}.db'}"

    def copy(self, source: str, label: str) -> str:
        target = self.create(label)
        for suffix in ("", "-wal"):
            path = Path(_sqlite_path(source) + suffix)
            if path.exists():
                shutil.copyfile(path, _sqlite_path(target) + suffix)
        return target

    def drop(self, url: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(_sqlite_path(url) + suffix).unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def describe(self) -> str:
        engine = make_engine(self.create("describe"))
        with engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        engine.dispose()
        levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return (
            f"SQLite {sqlite3.sqlite_version} (journal_mode={journal}, "
            f"synchronous={levels.get(int(synchronous or 0), synchronous)}), "
            f"files under {self.folder}"
        )


def _sqlite_path(url: str) -> str:
    return str(make_url(url).database)


class PostgresDatabases(Databases):
    """Databases on the server of `url`, created and dropped by the bench; a copy is a
    CREATE DATABASE … TEMPLATE of the seeded one."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        self.prefix = f"tk_bench_{secrets.token_hex(4)}"
        self.created: list[str] = []

    def _url(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def _execute(self, statement: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(statement))

    def create(self, label: str) -> str:
        name = f"{self.prefix}_{label}"
        self._execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self._url(name)

    def copy(self, source: str, label: str) -> str:
        name = f"{self.prefix}_{label}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(source).database}"')
        self.created.append(name)
        return self._url(name)

    def settle(self, url: str) -> None:
        """ANALYZE, as autovacuum would have done on a live database (the copies inherit
        the statistics); without them the planner guesses from empty tables."""
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
        engine.dispose()

    def drop(self, url: str) -> None:
        name = str(make_url(url).database)
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with suppress(ValueError):
            self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
        self.admin.dispose()

    def describe(self) -> str:
        with self.admin.connect() as connection:
            settings = {
                name: connection.execute(text(f"SHOW {name}")).scalar()
                for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes")
            }
        version = settings.pop("server_version")
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        return f"PostgreSQL {version} ({shown}) at {make_url(self.url).host}"
