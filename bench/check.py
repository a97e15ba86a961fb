"""The real-time check (LIM-1): in-process latency and over HTTP checks per second,
beside the bare database reading the counter row by its key in the same run.

    .venv/bin/python bench/check.py --database sqlite
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/check.py --database postgresql
    .venv/bin/python bench/check.py --smoke

Set-up (not timed): the world of hotpath_seed.py (`--stored` events already stored), and
organization `checked` on Growth with `--usage` message events ingested through the
service, so that its counters hold something.

Timed:
- in-process: `--checks` checks of `start_session` for `checked`, one after the other,
  each in its own transaction as `POST /v1/check` runs it (hotpath_calls.check): p50 and
  p99 latency, this process's CPU per check, the SQL statements per check;
- over HTTP: `POST /v1/check` to one server process (`tabkeeper serve`), from each
  `--clients` client processes (`--checks` in all, shared out): checks per second,
  p50/p99 latency seen by the clients, the server's CPU per check;
- bare, in the same run with the same clients: `SELECT quantity, answered FROM
  usage_counters WHERE <the sessions counter's key>` through the same driver.
Checked after the run: every check was allowed, and the counters of `checked` still equal
the recount of its events (the check changes nothing).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import hotpath_calls as tk
import hotpath_events as ev
from hotpath_bare import Bare
from hotpath_options import Sizes, add_size, databases_of, options
from hotpath_run import (
    Http,
    Ran,
    Tally,
    Work,
    in_process,
    load,
    machine,
    percentile,
    run_clients,
    server,
    statement_counter,
)
from hotpath_seed import World, build_world, require_exact, say, wall_now

CODE = "checked"
ACTION = "start_session"


def prepare(world: World, usage: int) -> tuple[int, tuple[int, str, datetime, str]]:
    """`checked` with some usage; its id and the key of its sessions counter."""
    world.subscribed(CODE)
    found = ev.events("message", CODE, "a0", "u", usage, wall_now() - timedelta(hours=2))
    for batch in ev.batches(found, 100):
        tk.ingest(world.engine, world.platform_id, ev.bodies(batch), wall_now())
    organization_id = world.organization_id(CODE)
    return organization_id, (organization_id, "sessions", world.start, "")


def figures(ran: Ran) -> str:
    ms = [s * 1000 for s in ran.tally.latencies]
    return (
        f"{ran.tally.operations / ran.seconds:,.0f}/s, p50 {percentile(ms, 50):.3f} ms, "
        f"p99 {percentile(ms, 99):.3f} ms"
    )


def bare_reads(world: World, key: tuple[int, str, datetime, str], clients: int, n: int) -> Ran:
    def make(_client: int) -> Work:
        bare = Bare(world.url)
        bare.read_counter(key)

        def work(deadline: float) -> Tally:
            tally = Tally()
            for _ in range(n):
                if time.monotonic() > deadline:
                    break
                started = time.perf_counter()
                bare.read_counter(key)
                tally.latencies.append(time.perf_counter() - started)
                tally.operations += 1
            bare.close()
            return tally

        return work

    world.engine.dispose()
    if clients == 1:
        return in_process(make(0), 600)
    return run_clients(clients, make, 600)


def measure(world: World, sizes: Sizes) -> list[str]:
    rows = []
    _, key = prepare(world, sizes.usage)
    engine = tk.make_engine(world.url)
    tk.check(engine, world.platform_id, CODE, ACTION, wall_now())  # warm
    counter = statement_counter(engine)

    def checks(deadline: float) -> Tally:
        tally = Tally()
        for _ in range(sizes.checks):
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            allowed = tk.check(engine, world.platform_id, CODE, ACTION, wall_now())
            tally.latencies.append(time.perf_counter() - started)
            tally.operations += 1
            tally.counted += allowed
        return tally

    counter.reset()
    ran = in_process(checks, sizes.seconds)
    engine.dispose()
    done = ran.tally.operations
    if ran.tally.counted != done:
        raise SystemExit(f"{done - ran.tally.counted} checks refused")
    bare = bare_reads(world, key, 1, sizes.checks)
    cpu = (ran.server_cpu or 0) * 1000 / done
    statements = counter.value / done
    line = (
        f"in-process, 1 client: {done:,} checks, {figures(ran)}; {cpu:.3f} ms CPU/check, "
        f"{statements:.1f} statements/check; bare SELECT {figures(bare)}; ratio "
        f"{(done / ran.seconds) / (bare.tally.operations / bare.seconds):.4f}; load {load()}"
    )
    say(f"  {line}")
    rows.append(_row(world, "in-process", 1, ran, bare, cpu, statements))
    with server(world.url) as running:
        for clients in sizes.clients:
            per_client = max(1, sizes.checks // clients)

            def make(_client: int, count: int = per_client) -> Work:
                http = Http(running.port, world.api_key)
                body = {"organization": CODE, "action": ACTION}
                http.post("/v1/check", body)

                def work(deadline: float) -> Tally:
                    tally = Tally()
                    for _ in range(count):
                        if time.monotonic() > deadline:
                            break
                        started = time.perf_counter()
                        answer = http.post("/v1/check", body)
                        tally.latencies.append(time.perf_counter() - started)
                        tally.operations += 1
                        tally.counted += bool(answer["allowed"])
                    http.close()
                    return tally

                return work

            world.engine.dispose()
            ran = run_clients(clients, make, sizes.seconds, running)
            done = ran.tally.operations
            if ran.tally.counted != done:
                raise SystemExit(f"{done - ran.tally.counted} checks refused")
            bare = bare_reads(world, key, clients, per_client)
            cpu = (ran.server_cpu or 0) * 1000 / done
            cut = "" if done == per_client * clients else " (CUT SHORT by --seconds)"
            line = (
                f"HTTP, {clients} client(s): {done:,} checks{cut}, {figures(ran)}; server "
                f"{cpu:.3f} ms CPU/check; bare SELECT {figures(bare)}; ratio "
                f"{(done / ran.seconds) / (bare.tally.operations / bare.seconds):.4f}; "
                f"load {load()}"
            )
            say(f"  {line}")
            rows.append(_row(world, "HTTP", clients, ran, bare, cpu, None))
    require_exact(world, CODE, "after the checks")
    return rows


def _row(
    world: World, path: str, clients: int, ran: Ran, bare: Ran, cpu: float, sql: float | None
) -> str:
    ms = [s * 1000 for s in ran.tally.latencies]
    bare_ms = [s * 1000 for s in bare.tally.latencies]
    rate = ran.tally.operations / ran.seconds
    bare_rate = bare.tally.operations / bare.seconds
    return (
        f"| {world.databases.name} | {path} | {clients} | {ran.tally.operations:,} "
        f"| {rate:,.0f} | {percentile(ms, 50):.2f} | {percentile(ms, 99):.2f} "
        f"| {bare_rate:,.0f} | {percentile(bare_ms, 50):.3f} | {percentile(bare_ms, 99):.3f} "
        f"| {rate / bare_rate:.4f} | {cpu:.2f} | {'' if sql is None else f'{sql:.1f}'} "
        f"| {load()} |"
    )


def main() -> None:
    parser = options(__doc__, stored=100_000, background=20)
    add_size(parser, "checks", int, 5_000, "checks per run (over all clients)")
    add_size(parser, "usage", int, 200, "message events of the checked organization")
    arguments = parser.parse_args()
    sizes = Sizes.of(arguments, smoke={"checks": 300, "usage": 20})
    sizes.clients = [c for c in (arguments.clients or [1, 8])]
    if arguments.smoke and not arguments.clients:
        sizes.clients = [1, 2]
    say(f"tabkeeper check bench: {machine()}")
    rows = []
    for databases in databases_of(arguments):
        say(databases.describe())
        world = build_world(databases, "check", sizes.stored, sizes.background)
        try:
            rows.extend(measure(world, sizes))
        finally:
            world.close()
            databases.close()
    say("")
    say(
        "| database | path | clients | checks | checks/s | p50 ms | p99 ms | bare SELECTs/s "
        "| bare p50 ms | bare p99 ms | ratio | CPU ms/check | statements/check | load 1/5 min |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for row in rows:
        say(row)


if __name__ == "__main__":
    main()
