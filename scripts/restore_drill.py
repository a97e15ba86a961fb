"""The restore drill of docs/operations.md ("Backups"), on a PostgreSQL database:

    .venv/bin/python scripts/restore_drill.py postgresql://user@host:5432/tabkeeper

1. `pg_dump --format=custom` of the database (what the nightly backup does);
2. a new, empty database on the same server, `pg_restore` of the dump into it;
3. `tabkeeper migrate` on the restored database (a backup taken before an upgrade is
   brought to the current schema; on a current one it changes nothing);
4. the invoices (with their lines) and the usage counters of both are read in full, in
   order, and compared: they must be identical, row for row, value for value.
Prints what it compared and exits 0 when identical, 1 when not; the restored database is
dropped afterwards unless `--keep`. The PostgreSQL programs are taken from `--bin`,
$TABKEEPER_TEST_PG_BIN (scripts/with-postgres) or the PATH. Run it against a copy or a
replica when the live database is large: it reads every invoice and counter twice.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

COMPARED = {
    "invoices": "SELECT * FROM invoices ORDER BY id",
    "invoice_lines": "SELECT * FROM invoice_lines ORDER BY id",
    "usage_counters": "SELECT * FROM usage_counters ORDER BY id",
}


def program(name: str, directory: str | None) -> str:
    for candidate in (directory, os.environ.get("TABKEEPER_TEST_PG_BIN")):
        if candidate and (Path(candidate) / name).exists():
            return str(Path(candidate) / name)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"restore drill: {name} not found (give --bin)")
    return found


def libpq(url: str) -> str:
    """The URL as PostgreSQL's own programs take it (no `+driver`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: [tuple(row) for row in connection.execute(text(query))]
                for table, query in COMPARED.items()
            }
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the database to back up (SQLAlchemy or libpq URL)")
    parser.add_argument("--bin", help="where pg_dump and pg_restore are")
    parser.add_argument("--keep", action="store_true", help="keep the restored database")
    arguments = parser.parse_args()
    source = make_url(arguments.url)
    if source.drivername == "postgresql":
        source = source.set(drivername="postgresql+psycopg")
    restored = source.set(database=f"{source.database}_restore_{uuid.uuid4().hex[:8]}")
    admin = create_engine(source.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with tempfile.TemporaryDirectory(prefix="tabkeeper-drill-") as directory:
        dump = Path(directory) / "tabkeeper.dump"
        source_url = source.render_as_string(hide_password=False)
        restored_url = restored.render_as_string(hide_password=False)
        pg_dump = program("pg_dump", arguments.bin)
        subprocess.run(
            [pg_dump, "--format=custom", "--file", str(dump), libpq(source_url)], check=True
        )
        print(f"dumped {source.database}: {dump.stat().st_size:,} bytes")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{restored.database}"'))
        try:
            pg_restore = program("pg_restore", arguments.bin)
            subprocess.run(
                [pg_restore, "--no-owner", "--dbname", libpq(restored_url), str(dump)],
                check=True,
            )
            tabkeeper = str(Path(sys.executable).with_name("tabkeeper"))
            environment = {**os.environ, "TABKEEPER_DATABASE_URL": restored_url}
            subprocess.run([tabkeeper, "migrate"], check=True, env=environment)
            before, after = rows(source_url), rows(restored_url)
        finally:
            if not arguments.keep:
                with admin.connect() as connection:
                    connection.execute(
                        text(f'DROP DATABASE IF EXISTS "{restored.database}" WITH (FORCE)')
                    )
            admin.dispose()
    same = True
    for table in COMPARED:
        verdict = "identical" if before[table] == after[table] else "DIFFERENT"
        same = same and before[table] == after[table]
        print(f"{table}: {len(before[table]):,} rows, restored {len(after[table]):,}: {verdict}")
    print("restore drill: " + ("identical" if same else "NOT identical"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
