"""The `tabkeeper` command: serve, migrate (and, as their issues land, worker, tick,
keys, catalog import, simulate)."""

from __future__ import annotations

import typer
import uvicorn

from tabkeeper.api.app import create_app
from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tabkeeper.settings import Settings

app = typer.Typer(
    help="tabkeeper: billing for platforms that sell AI agents.", no_args_is_help=True
)


@app.command()
def migrate() -> None:
    """Apply the database migrations (TABKEEPER_DATABASE_URL)."""
    settings = Settings()
    upgrade(make_engine(settings.database_url))
    typer.echo(f"migrated {settings.database_url}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Migrate, then run the API on HOST:PORT."""
    settings = Settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    typer.echo(f"tabkeeper on http://{host}:{port} (health: /health, API docs: /docs)")
    uvicorn.run(create_app(settings, engine), host=host, port=port, log_level="info")


def main() -> None:
    app()
