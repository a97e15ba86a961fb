"""The check's latency over HTTP while batches of 1,000 events are ingested at the same
time by other clients, beside the bare database doing the same mix in the same run.

    .venv/bin/python bench/mixed.py --database sqlite
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/mixed.py --database postgresql
    .venv/bin/python bench/mixed.py --smoke

Set-up (not timed): the world of hotpath_seed.py (`--stored` events already stored);
organization `checked` on Growth with some usage, and one organization per writer.

Timed, for `--seconds` (default 60), all clients released together:
- `--writers` client processes (default 2) each send `POST /v1/events` batches of
  `--batch` (default 1,000) message events to their own organization, one after the
  other, until the time is up (a batch under way is finished);
- `--checkers` client processes (default 2) each send `POST /v1/check` for `checked`
  one after the other until the time is up: p50, p99 and max latency as the clients see
  it, and checks per second;
- first, the checkers alone for `--seconds` / 3 (the same server, nothing ingested): the
  check's latency without the writers.
Bare, same clients, same time: the writers do one multi-row INSERT of the same rows and
one UPDATE per counter, COMMIT; the checkers SELECT the counter row by its key.
Checked after the run: every check was allowed, events stored = events accepted, and the
counters of every organization written to equal the recount of its events.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import hotpath_events as ev
from check import CODE, prepare
from hotpath_bare import Bare
from hotpath_options import Sizes, add_size, databases_of, options
from hotpath_run import Http, Ran, Tally, Work, load, machine, percentile, run_clients, server
from hotpath_seed import World, build_world, require_exact, say, stored_events, wall_now


def _writing(writers: int) -> Any:
    """How many writers are still writing (shared with the forked clients): the checkers
    stop when it is 0, so that they measure the check while writes go on; with no
    writers they run until the time is up."""
    return multiprocessing.get_context("fork").Value("i", max(1, writers))


def _done(writing: Any) -> None:
    with writing.get_lock():
        writing.value -= 1


def _tabkeeper(
    world: World, port: int, sizes: Sizes, writers: list[str], checkers: int, label: str
) -> Callable[[int], Work]:
    writing = _writing(len(writers))

    def make(client: int) -> Work:
        http = Http(port, world.api_key)
        if client < checkers:
            body = {"organization": CODE, "action": "start_session"}
            http.post("/v1/check", body)

            def check(deadline: float) -> Tally:
                tally = Tally()
                while time.monotonic() < deadline and writing.value > 0:
                    started = time.perf_counter()
                    status, answer = http.call("POST", "/v1/check", body)
                    tally.latencies.append(time.perf_counter() - started)
                    tally.operations += 1
                    if status >= 500:
                        tally.errors += 1
                    elif status != 200 or not answer["allowed"]:
                        raise RuntimeError(f"check refused: {status} {answer}")
                http.close()
                return tally

            return check
        writer = client - checkers
        found = _batches(writers[writer], writer, label, sizes)

        def write(deadline: float) -> Tally:
            tally = Tally()
            for batch in found:
                if time.monotonic() > deadline:
                    break
                status, answer = http.call("POST", "/v1/events", {"events": ev.bodies(batch)})
                if status >= 500:  # the batch is rolled back whole: nothing stored
                    tally.errors += 1
                    continue
                if status != 200 or answer["accepted"] != len(batch):
                    raise RuntimeError(f"unexpected answer {str(answer)[:300]}")
                tally.counted += answer["accepted"]
            _done(writing)
            http.close()
            return tally

        return write

    return make


def _batches(code: str, writer: int, label: str, sizes: Sizes) -> list[list[ev.Event]]:
    first = wall_now() - timedelta(hours=1)
    found = ev.events("message", code, f"a{writer}", f"{label}-{writer}",
                      sizes.batch * sizes.most, first)  # fmt: skip
    return ev.batches(found, sizes.batch)


def _bare(
    world: World, sizes: Sizes, bare_ids: list[int], key: tuple[object, ...], checkers: int,
    label: str,
) -> Callable[[int], Work]:  # fmt: skip
    writing = _writing(len(bare_ids) if label == "mixed" else 0)

    def make(client: int) -> Work:
        bare = Bare(world.url)
        if client < checkers:

            def check(deadline: float) -> Tally:
                tally = Tally()
                while time.monotonic() < deadline and writing.value > 0:
                    started = time.perf_counter()
                    bare.read_counter(key)  # type: ignore[arg-type]
                    tally.latencies.append(time.perf_counter() - started)
                    tally.operations += 1
                bare.close()
                return tally

            return check
        writer = client - checkers
        found = _batches(f"bare{writer}", writer, label, sizes)
        plans = ev.bare_plans(bare, found, bare_ids[writer], world.start)

        def write(deadline: float) -> Tally:
            tally = Tally()
            for plan in plans:
                if time.monotonic() > deadline:
                    break
                bare.insert_batch(plan.rows, plan.counters)
                tally.counted += len(plan.rows)
            _done(writing)
            bare.close()
            return tally

        return write

    return make


def _figures(ran: Ran, seconds: float) -> tuple[float, float, float, float]:
    """Checks per second over the checkers' time, p50, p99 and max latency in ms."""
    ms = [s * 1000 for s in ran.tally.latencies]
    return (ran.tally.operations / seconds, percentile(ms, 50), percentile(ms, 99),
            max(ms, default=float("nan")))  # fmt: skip


def measure(world: World, sizes: Sizes) -> list[str]:
    _, key = prepare(world, 50)
    writers = [world.subscribed(f"writer{i}") for i in range(sizes.writers)]
    bare_ids = [world.plain(f"bare{i}") for i in range(sizes.writers)]
    setup = Bare(world.url)
    for i, organization_id in enumerate(bare_ids):
        setup.create_counters(ev.counter_keys(organization_id, world.start, [f"a{i}"]))
    setup.close()
    world.engine.dispose()
    rows = []
    with server(world.url) as running:
        alone = run_clients(sizes.checkers,
                            _tabkeeper(world, running.port, sizes, [], sizes.checkers, "alone"),
                            sizes.seconds / 3, running)  # fmt: skip
        before = stored_events(world, writers)
        world.engine.dispose()
        clients = sizes.checkers + sizes.writers
        make = _tabkeeper(world, running.port, sizes, writers, sizes.checkers, "mixed")
        mixed = run_clients(clients, make, sizes.seconds, running)
    stored = stored_events(world, writers) - before
    if stored != mixed.tally.counted:
        raise SystemExit(f"NOT EXACT: {stored} events stored, {mixed.tally.counted} accepted")
    for code in [*writers, CODE]:
        require_exact(world, code, "after the mixed run")
    world.engine.dispose()
    bare_alone = run_clients(sizes.checkers, _bare(world, sizes, bare_ids, key, sizes.checkers,
                             "alone"), sizes.seconds / 3)  # fmt: skip
    bare = run_clients(sizes.checkers + sizes.writers,
                       _bare(world, sizes, bare_ids, key, sizes.checkers, "mixed"),
                       sizes.seconds)  # fmt: skip
    for name, checks, written in (
        ("tabkeeper", alone, None), ("tabkeeper", mixed, mixed),
        ("bare", bare_alone, None), ("bare", bare, bare),
    ):  # fmt: skip
        rate, p50, p99, most = _figures(checks, checks.seconds)
        events = "" if written is None else f"{written.tally.counted / written.seconds:,.0f}"
        while_ = "alone" if written is None else f"{sizes.writers} writers"
        errors = checks.tally.errors
        say(
            f"  {name:9} checks {while_}: {rate:,.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"max {most:.1f} ms; events/s meanwhile {events or '-'}; {errors} requests "
            f"answered 5xx; load {load()}"
        )
        rows.append(
            f"| {world.databases.name} | {name} | {while_} | {checks.tally.operations:,} "
            f"| {rate:,.0f} | {p50:.2f} | {p99:.2f} | {most:.1f} | {events or '-'} | {errors} "
            f"| {load()} |"
        )
    return rows


def main() -> None:
    parser = options(__doc__, stored=1_000_000, seconds=60.0, batches=[1000])
    add_size(parser, "writers", int, 2, "client processes ingesting batches")
    add_size(parser, "checkers", int, 2, "client processes checking")
    add_size(parser, "most", int, 100, "the most batches a writer may send")
    arguments = parser.parse_args()
    sizes = Sizes.of(arguments, smoke={"seconds": 6.0, "most": 10, "batches": [100]})
    sizes.batch = sizes.batches[0]
    say(f"tabkeeper mixed bench: {machine()}")
    rows = []
    for databases in databases_of(arguments):
        say(databases.describe())
        world = build_world(databases, "mixed", sizes.stored, sizes.background)
        try:
            rows.extend(measure(world, sizes))
        finally:
            world.close()
            databases.close()
    say("")
    say(
        "| database | who | checks while | checks | checks/s | p50 ms | p99 ms | max ms "
        "| events/s ingested meanwhile | requests answered 5xx | load 1/5 min |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for row in rows:
        say(row)


if __name__ == "__main__":
    main()
