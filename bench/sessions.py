"""Session starts (LIM-3) with concurrent clients over HTTP, beside the bare conditional
counter update with its insert, same clients, same run; exact in every run.

    .venv/bin/python bench/sessions.py --database sqlite
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/sessions.py --database postgresql
    .venv/bin/python bench/sessions.py --smoke

Set-up (not timed): the world of hotpath_seed.py (`--stored` events already stored); for
each run a fresh organization on Growth (2,000 sessions included, overage allowed: no
cap) or, for the capped run, one with a session limit of `--cap` (LIM-4) set through the
service.

Timed, with each `--clients` client processes (default 8), `--starts` attempts in all,
each a new conversation:
- tabkeeper: `POST /v1/sessions/start` to one server process (`tabkeeper serve`): starts
  per second, p50/p99 latency, the server's CPU per start;
- bare: `UPDATE usage_counters SET quantity = quantity + 1 unit WHERE <key> AND quantity
  + 1 unit <= cap RETURNING quantity`, and when a row came back one INSERT of the start
  event, COMMIT (BEGIN IMMEDIATE on SQLite), through the same driver.
Checked after every run, both kinds: admitted = the sessions counter = the start events
stored; with a cap below the attempts, admitted = the cap exactly; for tabkeeper every
counter also equals the recount of the stored events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import hotpath_calls as tk
from hotpath_bare import Bare
from hotpath_options import Sizes, add_size, databases_of, options
from hotpath_run import Http, Ran, Tally, Work, load, machine, percentile, run_clients, server
from hotpath_seed import World, build_world, require_exact, say, wall_now

UNCAPPED = 10**9


def _tabkeeper(world: World, port: int, code: str, per_client: int) -> Callable[[int], Work]:
    def make(client: int) -> Work:
        http = Http(port, world.api_key)
        bodies = [
            {"organization": code, "agent": f"a{client}", "conversation": f"s{client}-{j}"}
            for j in range(per_client)
        ]

        def work(deadline: float) -> Tally:
            tally = Tally()
            for body in bodies:
                if time.monotonic() > deadline:
                    break
                started = time.perf_counter()
                answer = http.post("/v1/sessions/start", body)
                tally.latencies.append(time.perf_counter() - started)
                tally.operations += 1
                tally.counted += bool(answer["allowed"])
            http.close()
            return tally

        return work

    return make


def _bare(world: World, organization_id: int, cap: int, per_client: int) -> Callable[[int], Work]:
    key = (organization_id, "sessions", world.start, "")

    def make(client: int) -> Work:
        bare = Bare(world.url)
        at = wall_now() - timedelta(minutes=1)
        events = [
            bare.event_row(
                organization_id,
                {
                    "id": f"{tk.SESSION_STARTED}:s{client}-{j}",
                    "type": tk.SESSION_STARTED,
                    "agent": f"a{client}",
                    "conversation": f"s{client}-{j}",
                    "time_at": at,
                },
                at,
            )
            for j in range(per_client)
        ]

        def work(deadline: float) -> Tally:
            tally = Tally()
            for event in events:
                if time.monotonic() > deadline:
                    break
                started = time.perf_counter()
                admitted = bare.start(key, cap * tk.SCALE, event)
                tally.latencies.append(time.perf_counter() - started)
                tally.operations += 1
                tally.counted += admitted
            bare.close()
            return tally

        return work

    return make


def _verify(world: World, organization_id: int, ran: Ran, cap: int | None, what: str) -> None:
    bare = Bare(world.url)
    counter = bare.count(
        "SELECT quantity FROM usage_counters WHERE organization_id = ? AND meter = 'sessions' "
        "AND scope = ''",
        organization_id,
    )
    events = bare.count(
        "SELECT count(*) FROM events WHERE organization_id = ? AND type = ?",
        organization_id,
        tk.SESSION_STARTED,
    )
    bare.close()
    admitted = ran.tally.counted
    exact = admitted * tk.SCALE == counter and admitted == events
    if cap is not None and cap < ran.tally.operations:
        exact = exact and admitted == cap
    if not exact:
        raise SystemExit(
            f"NOT EXACT ({what}): {admitted} admitted, counter {counter / tk.SCALE}, "
            f"{events} start events, cap {cap}, {ran.tally.operations} attempts"
        )


def run(world: World, sizes: Sizes, clients: int, cap: int | None, label: str) -> str:
    per_client = max(1, sizes.starts // clients)
    code = world.subscribed(f"starts-{label}")
    organization_id = world.organization_id(code)
    if cap is not None:
        tk.set_session_limit(world.engine, world.platform_id, code, cap, world.start)
    world.engine.dispose()
    with server(world.url) as running:
        ran = run_clients(clients, _tabkeeper(world, running.port, code, per_client),
                          sizes.seconds, running)  # fmt: skip
    _verify(world, organization_id, ran, cap, f"tabkeeper {label}")
    require_exact(world, code, f"after the {label} run")
    bare_id = world.plain(f"bare-{label}")
    setup = Bare(world.url)
    setup.create_counters([(bare_id, "sessions", world.start, "")])
    setup.close()
    world.engine.dispose()
    bare = run_clients(clients, _bare(world, bare_id, cap or UNCAPPED, per_client),
                       sizes.seconds)  # fmt: skip
    _verify(world, bare_id, bare, cap, f"bare {label}")
    rate = ran.tally.operations / ran.seconds
    bare_rate = bare.tally.operations / bare.seconds
    ms = [s * 1000 for s in ran.tally.latencies]
    bare_ms = [s * 1000 for s in bare.tally.latencies]
    cpu = (ran.server_cpu or 0) * 1000 / ran.tally.operations
    cut = "" if ran.tally.operations == per_client * clients else " CUT SHORT by --seconds;"
    say(
        f"  {label}: {clients} clients, {ran.tally.operations:,} attempts,{cut} "
        f"{ran.tally.counted:,} admitted (bare {bare.tally.counted:,}); tabkeeper "
        f"{rate:,.0f}/s p50 {percentile(ms, 50):.1f} ms p99 {percentile(ms, 99):.1f} ms, "
        f"{cpu:.2f} ms server CPU/start; bare {bare_rate:,.0f}/s p99 "
        f"{percentile(bare_ms, 99):.2f} ms; ratio {rate / bare_rate:.3f}; exact; load {load()}"
    )
    return (
        f"| {world.databases.name} | {label} | {clients} | {ran.tally.operations:,} "
        f"| {ran.tally.counted:,} | {rate:,.0f} | {percentile(ms, 50):.1f} "
        f"| {percentile(ms, 99):.1f} | {cpu:.2f} | {bare_rate:,.0f} "
        f"| {percentile(bare_ms, 99):.2f} | {rate / bare_rate:.3f} | {load()} |"
    )


def main() -> None:
    parser = options(__doc__, stored=100_000, background=20)
    add_size(parser, "starts", int, 2_000, "session start attempts per run (all clients)")
    add_size(parser, "cap", int, 0, "the capped run's session limit (default: attempts / 4)")
    arguments = parser.parse_args()
    sizes = Sizes.of(arguments, smoke={"starts": 200})
    clients = (arguments.clients or [2 if arguments.smoke else 8])[0]
    cap = sizes.cap or max(1, sizes.starts // 4)
    say(f"tabkeeper session starts bench: {machine()}")
    rows = []
    for databases in databases_of(arguments):
        say(databases.describe())
        world = build_world(databases, "sessions", sizes.stored, sizes.background)
        try:
            rows.append(run(world, sizes, clients, None, "uncapped"))
            rows.append(run(world, sizes, clients, cap, "capped"))
        finally:
            world.close()
            databases.close()
    say("")
    say(
        "| database | run | clients | attempts | admitted | tabkeeper starts/s | p50 ms "
        "| p99 ms | server CPU ms/start | bare starts/s | bare p99 ms | ratio | load 1/5 min |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for row in rows:
        say(row)


if __name__ == "__main__":
    main()
