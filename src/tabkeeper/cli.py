"""The `tabkeeper` command: serve, worker, tick, migrate, catalog import, simulate.

`serve --demo` seeds the demo platform (tabkeeper.demo) after migrating, when it is not
there yet, and prints its API key and one portal URL per demo organization before the
server starts.

`worker` and `tick` also run the notice dispatcher (tabkeeper.notify) after the billing
clock, so the notices of the work just done go out in the same pass.

Settings come from TABKEEPER_* environment variables (tabkeeper.settings). Errors a person
can fix (a bad file, an unknown platform) print one line on stderr and exit with 2.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
import uvicorn
import yaml
from pydantic import ValidationError
from sqlalchemy import Engine

import tabkeeper
from tabkeeper.api.access_log import redact_access_log
from tabkeeper.api.metrics import MULTIPROCESS_DIR
from tabkeeper.api.served import SERVE_CLOCK, SERVE_INTERVAL, served
from tabkeeper.clock import SimulatedClock, SystemClock
from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.db.migrate import upgrade
from tabkeeper.domain.errors import TabkeeperError
from tabkeeper.domain.utc import parse_instant
from tabkeeper.logs import log_config, use_json_logs
from tabkeeper.notify.dispatcher import Dispatcher
from tabkeeper.payments.choice import payment_provider
from tabkeeper.settings import Settings
from tabkeeper.worker.clock import BillingClock
from tabkeeper.worker.loop import run_worker
from tabkeeper.worker.wake import Alarm

app = typer.Typer(
    help="tabkeeper: billing for platforms that sell AI agents.", no_args_is_help=True
)
catalog_app = typer.Typer(help="The platform's catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
keys_app = typer.Typer(help="The platform's API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"tabkeeper {tabkeeper.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version (pyproject.toml's, from the installed package) and exit.",
    ),
) -> None:
    """tabkeeper: billing for platforms that sell AI agents."""


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def _load(file: Path) -> Any:
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise _fail(f"{file}: {error}") from None


def _settings() -> Settings:
    """TABKEEPER_* read once; a half-configured setting (such as the payment provider,
    PAY-4) stops the command with its message, not a traceback."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        raise _fail(f"tabkeeper: settings refused: {problems}") from None


@contextmanager
def _database(settings: Settings | None = None) -> Iterator[Engine]:
    """The migrated database of TABKEEPER_DATABASE_URL, closed when the block ends."""
    engine = make_engine((settings or _settings()).database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@app.command()
def migrate() -> None:
    """Apply the database migrations (TABKEEPER_DATABASE_URL)."""
    settings = _settings()
    with _database(settings):
        typer.echo(f"migrated {settings.database_url}")


@catalog_app.command("import")
def catalog_import(
    file: Path = typer.Argument(..., help="YAML or JSON with `catalog` and optional `settings`."),
    platform: str = typer.Option("default", help="The platform's code; created when missing."),
    name: str = typer.Option("", help="The platform's name (when it is created)."),
) -> None:
    """Import a catalog: a new version when it differs from the current one (CAT-6)."""
    from tabkeeper.services.catalog import ensure_platform, import_catalog

    document = _load(file)
    if not isinstance(document, dict) or "catalog" not in document:
        raise _fail(f"{file}: expected a mapping with a `catalog` section (and `settings`)")
    unknown = set(document) - {"catalog", "settings"}
    if unknown:
        raise _fail(f"{sorted(unknown)[0]}: unknown section; expected catalog, settings")
    with _database() as engine:
        try:
            with transaction(engine) as session:
                now = SystemClock().now()
                row = ensure_platform(
                    session, platform, name or platform, now, document.get("settings") or {}
                )
                version = import_catalog(session, row, document["catalog"], now)
                typer.echo(f"platform {platform}: catalog version {version.version}")
        except TabkeeperError as error:
            raise _fail(error.message) from None


@keys_app.command("create")
def keys_create(
    platform: str = typer.Option("default", help="The platform's code; created when missing."),
    name: str = typer.Option("cli", help="What the key is for (shown in key lists)."),
) -> None:
    """Make an API key for the platform and print it: shown this once, stored hashed."""
    from tabkeeper.services.access import create_api_key
    from tabkeeper.services.catalog import ensure_platform

    with _database() as engine:
        try:
            with transaction(engine) as session:
                now = SystemClock().now()
                row = ensure_platform(session, platform, platform, now)
                _, key = create_api_key(session, row.id, name, now)
        except TabkeeperError as error:
            raise _fail(error.message) from None
    typer.echo(key)


@app.command()
def simulate(file: Path = typer.Argument(..., help="A scenario file, YAML or JSON.")) -> None:
    """Run a scenario on a fresh in-memory database; print its results as JSON."""
    from tabkeeper.simulation.run import render
    from tabkeeper.simulation.run import simulate as run_scenario

    data = _load(file)
    try:
        result = run_scenario(data)
    except TabkeeperError as error:
        raise _fail(error.message) from None
    sys.stdout.write(render(result))


@app.command()
def tick(
    now: str = typer.Option(..., help="The moment to run the clock to, ISO 8601 with a zone."),
) -> None:
    """Do all billing work due by NOW, once, and exit (safe to repeat: INV-4)."""
    try:
        moment = parse_instant(now, "--now")
    except TabkeeperError as error:
        raise _fail(error.message) from None
    clock = SimulatedClock(moment)
    settings = _settings()
    with _database(settings) as engine:
        provider = payment_provider(settings, engine, clock)
        done = BillingClock(engine, provider, clock).tick()
        typer.echo(f"did {done} piece(s) of due work up to {now}")
        sent = Dispatcher(engine, clock, settings, wall_clock=SystemClock()).tick()
        typer.echo(f"handled {sent} notice deliveries")


@app.command()
def worker(
    interval: float = typer.Option(
        5.0,
        min=0.1,
        help="The most seconds between two looks for work written by other processes "
        "(work comes due on time whatever this is).",
    ),
) -> None:
    """Run the billing clock (renewals, retries, trial ends, ... as they come due) and
    deliver the notices (e-mail, webhooks)."""
    settings = _settings()
    stop = threading.Event()
    alarm = Alarm()

    def stopping(_signum: int, _frame: Any) -> None:
        stop.set()  # the piece of work being done is finished, then the loop ends
        alarm.ring()

    use_json_logs()
    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    with _database(settings) as engine:
        typer.echo(
            f"billing clock running (due work on time; new work looked for at least every "
            f"{interval:g} s); SIGTERM or Ctrl-C stops it after the work in hand"
        )
        provider = payment_provider(settings, engine, SystemClock())
        run_worker(engine, settings, provider, interval, stop, alarm=alarm)
        typer.echo("stopped")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(
        1,
        min=1,
        help="API processes (uvicorn's process manager: it restarts one that dies). Each "
        "runs the billing clock too unless --no-clock or TABKEEPER_SEPARATE_WORKER=true.",
    ),
    clock: bool = typer.Option(
        True,
        help="Also run the billing clock and the dispatcher (off as well when "
        "TABKEEPER_SEPARATE_WORKER=true: `tabkeeper worker` processes do that work).",
    ),
    interval: float = typer.Option(
        30.0,
        min=0.1,
        help="The most seconds the billing clock sleeps before looking for work written by "
        "other processes (this server's own requests wake it at once).",
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Seed the demo platform (once; docs/demo.md) and print its API key and the "
        "portal URL of each demo organization.",
    ),
    access_log: bool = typer.Option(
        False,
        "--access-log/--no-access-log",
        help="Log a JSON line per request, with its request id (off by default: the proxy "
        "in front usually keeps that log).",
    ),
    graceful_timeout: int = typer.Option(
        30,
        min=1,
        help="On SIGTERM, the most seconds to wait for requests in flight.",
    ),
) -> None:
    """Migrate, then run the API on HOST:PORT, with the billing clock beside it."""
    if access_log:
        os.environ["TABKEEPER_REQUEST_LOG"] = "true"  # read by each API process's Settings
    settings = _settings()
    run_clock = clock and not settings.separate_worker
    with _database(settings) as engine:
        if demo:
            print_demo(engine, settings, f"http://{host}:{port}")
        typer.echo(f"tabkeeper on http://{host}:{port} (health: /health, API docs: /docs)")
        typer.echo(f"HTTP parser: {http_parser()}; event loop: {event_loop()}")
        typer.echo(
            f"{workers} API process(es); billing clock "
            + ("in each" if run_clock else "off (run `tabkeeper worker`)")
        )
        redact_access_log()  # query tokens never reach the access log (OPS-4)
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "log_level": "info",
            "log_config": log_config(),
            "access_log": False,  # the request log is tabkeeper's own (api/observe.py)
            "timeout_graceful_shutdown": graceful_timeout,
            # uvicorn's manager pings each API process and kills one that does not answer
            # in time; a new one answers only once it has imported tabkeeper, which took
            # more than uvicorn's default 5 s on a busy 2-core machine (killed, restarted,
            # killed again, never ready).
            "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
        }
        if workers == 1:
            switch_interval = sys.getswitchinterval()
            try:
                uvicorn.run(served(settings, engine, clock=run_clock, interval=interval), **options)
            finally:
                sys.setswitchinterval(switch_interval)
            return
    os.environ[SERVE_CLOCK] = "1" if run_clock else "0"
    os.environ[SERVE_INTERVAL] = str(interval)
    metrics_directory(os.environ)
    uvicorn.run(SERVED_FACTORY, factory=True, workers=workers, **options)


SERVED_FACTORY = "tabkeeper.api.served:app"
WORKER_HEALTHCHECK_SECONDS = 30


def metrics_directory(environment: MutableMapping[str, str]) -> Path:
    """The directory where the API processes of `serve --workers N` keep their metrics
    (prometheus-client's multi-process mode, api/metrics.py): PROMETHEUS_MULTIPROC_DIR
    when set (emptied of an earlier run's files), else a new temporary directory."""
    given = environment.get(MULTIPROCESS_DIR)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.db"):
            old.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="tabkeeper-metrics-"))
        environment[MULTIPROCESS_DIR] = str(directory)
    return directory


def http_parser() -> str:
    """What uvicorn's `http="auto"` takes: httptools (C) when installed, else h11."""
    return "httptools" if importlib.util.find_spec("httptools") else "h11 (pure Python)"


def event_loop() -> str:
    """What uvicorn's `loop="auto"` takes: uvloop when installed, else asyncio's."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def print_demo(engine: Engine, settings: Settings, base_url: str) -> None:
    """Seed the demo platform when it is missing and print its API key and portal URLs
    (`serve --demo`): fresh portal sessions each time, nothing seeded twice."""
    from tabkeeper.demo import demo_lines, seed_demo

    try:
        report = seed_demo(engine, settings, SystemClock().now())
    except TabkeeperError as error:
        raise _fail(error.message) from None
    for line in demo_lines(report, base_url):
        typer.echo(line)


@app.command()
def openapi() -> None:
    """Print the API's OpenAPI document (docs/openapi.json is this output: INT-2)."""
    from tabkeeper.api.openapi import document_text

    typer.echo(document_text(), nl=False)


def main() -> None:
    app()
