"""Events per second through each client's buffered `events.track` (issue 14), against
one server process, beside raw HTTP batches and the bare database in the same run.

    .venv/bin/python bench/clients.py --database sqlite
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/clients.py --database postgresql
    .venv/bin/python bench/clients.py --smoke                      # seconds

Set-up (not timed): bench/hotpath_seed.py's world (the demo catalog, `--stored` events
already stored over `--background` organizations), and one organization on Voice for
each run. Timed, one client at a time, `--events` `call.ended` events each (durations 30
to 329 s) for its own organization:
- Python, sync: `Client.events.track(...)` in a loop, then `close()` (clients/python);
- Python, async: `await AsyncClient.events.track(...)`, then `aclose()`;
- TypeScript: `client.events.track(...)`, then `await close()` (clients/typescript,
  Node, bench/clients_track.mjs);
- raw HTTP: the same events prebuilt in batches of 1,000, POSTed on one kept-alive
  http.client connection (bench/ingest.py's HTTP path): what the server does when the
  client costs nothing;
- bare: the same rows with one multi-row INSERT and one UPDATE per counter per batch of
  1,000, COMMIT (bench/hotpath_bare.py), into an organization of its own.
Every client batch is 1,000 events (the clients' default); ids and times are made by the
clients. Measured: events/s from the first `track` to the end of `close()`; the server's
CPU per event (utime+stime from /proc, the billing clock's thread included); the client
process's CPU per event. Checked after every run: stored = sent, nothing refused or
duplicated, and every counter equal to the recount of its stored events.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import hotpath_events as ev
from hotpath_bare import Bare
from hotpath_options import Sizes, databases_of, options
from hotpath_run import Http, Server, load, machine, server
from hotpath_seed import World, build_world, require_exact, say, stored_events, wall_now
from tabkeeper_client import AsyncClient, Client

BATCH = 1000
ROOT = Path(__file__).resolve().parent.parent
TYPESCRIPT = ROOT / "clients" / "typescript"


@dataclass(frozen=True, slots=True)
class Row:
    path: str
    events: int
    seconds: float
    server_cpu: float | None
    client_cpu: float | None
    bare_per_second: float
    load: str

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    def cpu_ms(self, cpu: float | None) -> str:
        return "" if cpu is None else f"{cpu * 1000 / self.events:.3f}"


def duration(i: int) -> int:
    return 30 + i % 300


def python_sync(running: Server, key: str, code: str, n: int) -> tuple[float, float]:
    with Client(key, f"http://127.0.0.1:{running.port}") as client:
        cpu, started = time.process_time(), time.perf_counter()
        for i in range(n):
            client.events.track("call.ended", code, agent="a0",
                                properties={"duration_seconds": duration(i)})  # fmt: skip
        client.close()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stats = client.events.buffer.stats
    exact(stats.sent, stats.accepted, stats.duplicates, len(stats.refused), n)
    return elapsed, cpu


def python_async(running: Server, key: str, code: str, n: int) -> tuple[float, float]:
    async def main() -> tuple[float, float]:
        client = AsyncClient(key, f"http://127.0.0.1:{running.port}")
        cpu, started = time.process_time(), time.perf_counter()
        for i in range(n):
            await client.events.track("call.ended", code, agent="a0",
                                      properties={"duration_seconds": duration(i)})  # fmt: skip
        await client.aclose()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stats = client.events.buffer.stats
        exact(stats.sent, stats.accepted, stats.duplicates, len(stats.refused), n)
        return elapsed, cpu

    return asyncio.run(main())


def typescript(running: Server, key: str, code: str, n: int) -> tuple[float, float]:
    env = {
        **os.environ, "BENCH_URL": f"http://127.0.0.1:{running.port}", "BENCH_KEY": key,
        "BENCH_ORG": code, "BENCH_AGENT": "a0", "BENCH_EVENTS": str(n),
    }  # fmt: skip
    node = shutil.which("node") or "node"
    run = subprocess.run(
        [node, str(ROOT / "bench" / "clients_track.mjs")],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    answer = json.loads(run.stdout)
    exact(answer["sent"], answer["accepted"], answer["duplicates"], answer["refused"], n)
    return float(answer["seconds"]), float(answer["cpu_seconds"])


def raw_http(running: Server, key: str, code: str, n: int) -> tuple[float, float]:
    first = wall_now() - timedelta(hours=1)
    found = ev.batches(ev.events("call", code, "a0", f"raw-{code}", n, first), BATCH)
    http = Http(running.port, key)
    cpu, started = time.process_time(), time.perf_counter()
    accepted = 0
    for batch in found:
        accepted += http.post("/v1/events", {"events": ev.bodies(batch)})["accepted"]
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    http.close()
    exact(n, accepted, 0, 0, n)
    return elapsed, cpu


def exact(sent: int, accepted: int, duplicates: int, refused: int, n: int) -> None:
    if not (sent == accepted == n and duplicates == refused == 0):
        raise SystemExit(f"NOT EXACT: {sent} sent, {accepted} accepted, {duplicates} "
                         f"duplicates, {refused} refused of {n}")  # fmt: skip


def bare(world: World, label: str, n: int) -> float:
    """Rows/s of the bare database for the same events, batches of BATCH."""
    organization_id = world.plain(f"bare-{label}")
    handle = Bare(world.url)
    handle.create_counters(ev.counter_keys(organization_id, world.start, ["a0"]))
    first = wall_now() - timedelta(hours=1)
    found = ev.batches(ev.events("call", f"bare-{label}", "a0", f"bare-{label}", n, first), BATCH)
    plans = ev.bare_plans(handle, found, organization_id, world.start)
    started = time.perf_counter()
    for plan in plans:
        handle.insert_batch(plan.rows, plan.counters)
    elapsed = time.perf_counter() - started
    handle.close()
    return n / elapsed


Runner = Callable[[Server, str, str, int], tuple[float, float]]
PATHS: list[tuple[str, Runner]] = [
    ("Python sync track", python_sync),
    ("Python async track", python_async),
    ("TypeScript track", typescript),
    ("raw HTTP batches", raw_http),
]


def build_typescript() -> None:
    if not (TYPESCRIPT / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=TYPESCRIPT, check=True)  # fmt: skip
    subprocess.run(["node", "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"],
                   cwd=TYPESCRIPT, check=True)  # fmt: skip


def table(database: str, rows: list[Row]) -> str:
    head = (
        "| database | path | events | events/s | bare rows/s | ratio | server CPU ms/event "
        "| client CPU ms/event | load 1/5 min |\n|---|---|---:|---:|---:|---:|---:|---:|---|"
    )
    lines = [
        f"| {database} | {r.path} | {r.events:,} | {r.per_second:,.0f} "
        f"| {r.bare_per_second:,.0f} | {r.per_second / r.bare_per_second:.4f} "
        f"| {r.cpu_ms(r.server_cpu)} | {r.cpu_ms(r.client_cpu)} | {r.load} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def main() -> None:
    parser = options(__doc__, stored=1_000_000, events=20_000)
    arguments = parser.parse_args()
    sizes = Sizes.of(arguments, smoke={"events": 2_000})
    say(f"tabkeeper clients bench: {machine()}")
    build_typescript()
    for databases in databases_of(arguments):
        say(databases.describe())
        world = build_world(databases, "clients", sizes.stored, sizes.background)
        rows: list[Row] = []
        try:
            codes = {name: world.subscribed(f"client{i}", "voice")
                     for i, (name, _) in enumerate(PATHS)}  # fmt: skip
            world.engine.dispose()
            with server(world.url) as running:
                for i, (name, run) in enumerate(PATHS):
                    code = codes[name]
                    before = stored_events(world, [code])
                    world.engine.dispose()
                    server_before = running.cpu()
                    seconds, client_cpu = run(running, world.api_key, code, sizes.events)
                    server_cpu = running.cpu() - server_before
                    stored = stored_events(world, [code]) - before
                    if stored != sizes.events:
                        raise SystemExit(f"NOT EXACT: {stored} stored of {sizes.events}")
                    require_exact(world, code, f"after {name}")
                    bare_rate = bare(world, f"r{i}", sizes.events)
                    world.engine.dispose()
                    row = Row(name, sizes.events, seconds, server_cpu, client_cpu, bare_rate,
                              load())  # fmt: skip
                    rows.append(row)
                    say(
                        f"  {name:20} {row.events:,} events in {seconds:.2f} s: "
                        f"{row.per_second:,.0f}/s; bare {bare_rate:,.0f} rows/s; server "
                        f"{row.cpu_ms(server_cpu)} ms CPU/event, client "
                        f"{row.cpu_ms(client_cpu)} ms; exact; load {row.load}"
                    )
            say("")
            say(table(databases.name, rows))
        finally:
            world.close()
            databases.close()


if __name__ == "__main__":
    main()
