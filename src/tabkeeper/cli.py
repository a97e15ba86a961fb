"""The `tabkeeper` command: serve, migrate (and, as their issues land, worker, tick,
keys, catalog import, simulate)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
import uvicorn
import yaml

from tabkeeper.api.app import create_app
from tabkeeper.db.engine import make_engine
from tabkeeper.db.migrate import upgrade
from tabkeeper.domain.errors import TabkeeperError
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
def simulate(file: Path = typer.Argument(..., help="A scenario file, YAML or JSON.")) -> None:
    """Run a scenario on a fresh in-memory database; print its results as JSON."""
    from tabkeeper.simulate import render
    from tabkeeper.simulate import simulate as run_scenario

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        typer.echo(f"{file}: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        result = run_scenario(data)
    except TabkeeperError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(render(result))


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
