"""Usage events per second (USE-1), in-process and over HTTP, with 1,000,000 events
already stored, beside the bare database writing the same rows in the same run.

    .venv/bin/python bench/ingest.py --database sqlite
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/ingest.py --database postgresql
    .venv/bin/python bench/ingest.py --database sqlite --smoke      # seconds

Set-up (not timed, hotpath_seed.py): a fresh database, the demo catalog, `--background`
organizations subscribed to Growth through the services and `--stored` events among
them written with plain multi-row inserts (conversations and counters consistent with
them, proven by a recount). The measured organizations (`message<i>` on Growth,
`call<i>` on Voice) are subscribed through the services; client i always writes to its
own organization, as agent `a<i>`.

Timed, for message events and `call.ended` events (hotpath_events.py):
- in-process: the service called directly (hotpath_calls.ingest: one transaction per
  batch, as the route), batches of each `--batch`; this process's CPU per event and the
  SQL statements sent per event;
- over HTTP: `POST /v1/events` to one server process (`tabkeeper serve` on 127.0.0.1),
  batches of each `--batch` from each `--clients` client processes, and one event per
  request from one client; the server's CPU per event (utime+stime from /proc);
- bare, in the same run with the same clients: one multi-row INSERT of the same rows
  and one UPDATE per counter the batch changes, COMMIT (hotpath_bare.py), into
  organizations of their own.
Checked after every run (not timed): events stored = events accepted = events sent, no
duplicate and nothing refused; every counter of each organization written to equals the
recount of its stored events.
Then the cost of one more message in a conversation of 10 messages and in one of
`--long` (20,000) messages: `--more` messages each, one at a time, in-process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import hotpath_calls as tk
import hotpath_events as ev
from hotpath_bare import Bare
from hotpath_options import Sizes, add_size, databases_of, options
from hotpath_run import (
    Http,
    Ran,
    Server,
    Tally,
    Work,
    in_process,
    load,
    machine,
    run_clients,
    server,
    statement_counter,
)
from hotpath_seed import (
    World,
    build_world,
    require_exact,
    say,
    seed_conversation,
    stored_events,
    wall_now,
)


@dataclass(frozen=True, slots=True)
class Row:
    path: str
    kind: str
    batch: int
    clients: int
    events: int
    per_second: float
    bare_per_second: float
    cpu_ms: float | None
    statements: float | None
    load: str

    @property
    def ratio(self) -> float:
        return self.per_second / self.bare_per_second


class Bench:
    def __init__(self, world: World, sizes: Sizes) -> None:
        self.world, self.sizes = world, sizes
        self.runs = 0
        clients = max(sizes.clients)
        self.targets = {
            kind: [world.subscribed(f"{kind}{i}", "growth" if kind == "message" else "voice")
                   for i in range(clients)]
            for kind in ev.KINDS
        }  # fmt: skip
        self.bare_ids = [world.plain(f"bare{i}") for i in range(clients)]
        bare = Bare(world.url)
        for i, organization_id in enumerate(self.bare_ids):
            bare.create_counters(ev.counter_keys(organization_id, world.start, [f"a{i}"]))
        bare.close()
        self.rows: list[Row] = []

    def _label(self) -> str:
        self.runs += 1
        return f"r{self.runs}"

    def _events(self, kind: str, client: int, label: str, n: int) -> list[ev.Event]:
        first = wall_now() - timedelta(hours=1)
        return ev.events(kind, self.targets[kind][client], f"a{client}", f"{label}-{client}",
                         n, first)  # fmt: skip

    def _stored(self, codes: list[str]) -> int:
        return stored_events(self.world, codes)

    def _bare(self, kind: str, batch: int, clients: int, per_client: int, label: str) -> Ran:
        world = self.world

        def make(client: int) -> Work:
            bare = Bare(world.url)
            found = ev.batches(self._events(kind, client, label, per_client), batch)
            plans = ev.bare_plans(bare, found, self.bare_ids[client], world.start)

            def work(deadline: float) -> Tally:
                tally = Tally()
                for plan in plans:
                    if time.monotonic() > deadline:
                        break
                    bare.insert_batch(plan.rows, plan.counters)
                    tally.operations += 1
                    tally.counted += len(plan.rows)
                bare.close()
                return tally

            return work

        world.engine.dispose()
        return run_clients(clients, make, self.sizes.seconds)

    def _verify(self, kind: str, clients: int, before: int, ran: Ran, sent: int) -> None:
        codes = self.targets[kind][:clients]
        stored = self._stored(codes) - before
        if not (stored == ran.tally.counted == sent):
            raise SystemExit(
                f"NOT EXACT: {stored} events stored, {ran.tally.counted} accepted, {sent} sent"
            )
        for code in codes:
            require_exact(self.world, code, "after the run")

    def _record(self, path: str, kind: str, batch: int, clients: int, ran: Ran, bare: Ran,
                statements: float | None, planned: int) -> None:  # fmt: skip
        n = ran.tally.counted
        cut = "" if n == planned else f" (CUT SHORT by --seconds: {planned:,} planned)"
        row = Row(
            path, kind, batch, clients, n, n / ran.seconds, bare.tally.counted / bare.seconds,
            None if ran.server_cpu is None else ran.server_cpu * 1000 / n, statements, load(),
        )  # fmt: skip
        self.rows.append(row)
        cpu = "" if row.cpu_ms is None else f", {row.cpu_ms:.2f} ms CPU/event"
        sql = "" if statements is None else f", {statements:.3f} statements/event"
        say(
            f"  {path:10} {kind:7} batch {batch:>5} clients {clients}: {n:,} events{cut}, "
            f"{row.per_second:,.0f}/s; bare {row.bare_per_second:,.0f} rows/s; ratio "
            f"{row.ratio:.4f}{cpu}{sql}; exact; load {row.load}"
        )

    def in_process(self, kind: str, batch: int) -> None:
        label = self._label()
        n = max(batch, self.sizes.events // batch * batch)
        found = ev.batches(self._events(kind, 0, label, n), batch)
        engine = tk.make_engine(self.world.url)
        tk.ingest(engine, self.world.platform_id, [], wall_now())  # warm
        counted = statement_counter(engine)
        before = self._stored(self.targets[kind][:1])

        def work(deadline: float) -> Tally:
            tally = Tally()
            for events in found:
                if time.monotonic() > deadline:
                    break
                accepted, duplicates, refused = tk.ingest(
                    engine, self.world.platform_id, ev.bodies(events), wall_now()
                )
                assert duplicates == refused == 0, (duplicates, refused)
                tally.operations += 1
                tally.counted += accepted
            return tally

        counted.reset()
        ran = in_process(work, self.sizes.seconds)
        statements = counted.value / max(1, ran.tally.counted)
        engine.dispose()
        sent = sum(len(b) for b in found[: ran.tally.operations])
        self._verify(kind, 1, before, ran, sent)
        bare = self._bare(kind, batch, 1, n, label)
        self._record("in-process", kind, batch, 1, ran, bare, statements, n)

    def over_http(self, running: Server, kind: str, batch: int, clients: int) -> None:
        label = self._label()
        per_client = max(batch, self.sizes.events // clients // batch * batch)
        if batch == 1:
            per_client = self.sizes.single
        before = self._stored(self.targets[kind][:clients])
        key = self.world.api_key

        def make(client: int) -> Work:
            found = ev.batches(self._events(kind, client, label, per_client), batch)
            http = Http(running.port, key)

            def work(deadline: float) -> Tally:
                tally = Tally()
                for events in found:
                    if time.monotonic() > deadline:
                        break
                    started = time.perf_counter()
                    answer = http.post("/v1/events", {"events": ev.bodies(events)})
                    tally.latencies.append(time.perf_counter() - started)
                    if answer["duplicates"] or answer["refused"]:
                        raise RuntimeError(f"unexpected answer {str(answer)[:300]}")
                    tally.operations += 1
                    tally.counted += answer["accepted"]
                http.close()
                return tally

            return work

        self.world.engine.dispose()
        ran = run_clients(clients, make, self.sizes.seconds, running)
        sent = ran.tally.operations * batch  # every batch is full
        self._verify(kind, clients, before, ran, sent)
        bare = self._bare(kind, batch, clients, per_client, label)
        self._record("HTTP", kind, batch, clients, ran, bare, None, per_client * clients)

    def conversation_cost(self) -> str:
        """CPU per message added, in-process, to a conversation of 10 and of `long`."""
        world, sizes = self.world, self.sizes
        code = world.subscribed("talk")
        first = world.start + timedelta(hours=1)
        long = [(first + timedelta(milliseconds=500 * j), j % 2 == 0) for j in range(sizes.long)]
        seed_conversation(world, code, "short", "a0", long[:10])
        seed_conversation(world, code, "long", "a0", long)
        require_exact(world, code, "after seeding the conversations")
        engine = tk.make_engine(world.url)
        costs = {}
        for name in ("short", "long"):
            at = first + timedelta(hours=4)
            found = [
                {"id": f"{name}-more-{j}", "type": "message", "org": code, "agent": "a0",
                 "conversation": name, "time": ev.iso(at + timedelta(seconds=j)),
                 "properties": {"direction": "inbound" if j % 2 else "outbound"}}
                for j in range(sizes.more)
            ]  # fmt: skip
            tk.ingest(engine, world.platform_id, [], wall_now())
            cpu = time.process_time()
            for event in found:
                accepted, _, _ = tk.ingest(engine, world.platform_id, [event], wall_now())
                assert accepted == 1
            costs[name] = (time.process_time() - cpu) * 1000 / sizes.more
        engine.dispose()
        require_exact(world, code, "after the messages")
        ratio = costs["long"] / costs["short"]
        return (
            f"one more message, in-process CPU ({sizes.more} messages each): "
            f"{costs['short']:.2f} ms in a conversation of 10 messages, {costs['long']:.2f} ms "
            f"in one of {sizes.long:,}: {ratio:.1f}x; exact; load {load()}"
        )


def table(database: str, rows: list[Row]) -> str:
    lines = [
        f"| {database} | {r.path} | {r.kind} | {r.batch:,} | {r.clients} | {r.events:,} "
        f"| {r.per_second:,.0f} | {r.bare_per_second:,.0f} | {r.ratio:.4f} "
        f"| {'' if r.cpu_ms is None else f'{r.cpu_ms:.2f}'} "
        f"| {'' if r.statements is None else f'{r.statements:.3f}'} | {r.load} |"
        for r in rows
    ]
    head = (
        "| database | path | kind | batch | clients | events sent | tabkeeper events/s "
        "| bare rows/s | ratio | CPU ms/event | statements/event | load 1/5 min |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    return "\n".join([head, *lines])


def main() -> None:
    parser = options(__doc__, stored=1_000_000)
    add_size(parser, "long", int, 20_000, "messages of the long conversation")
    add_size(parser, "more", int, 200, "messages added to each conversation, one at a time")
    add_size(parser, "single", int, 300, "events sent one per request")
    arguments = parser.parse_args()
    sizes = Sizes.of(arguments, smoke={"long": 500, "more": 20, "single": 20})
    say(f"tabkeeper ingestion bench: {machine()}")
    for databases in databases_of(arguments):
        say(databases.describe())
        world = build_world(databases, "ingest", sizes.stored, sizes.background)
        try:
            bench = Bench(world, sizes)
            for kind in ev.KINDS:
                for batch in sizes.batches:
                    bench.in_process(kind, batch)
            with server(world.url) as running:
                for kind in ev.KINDS:
                    for batch in sizes.batches:
                        for clients in sizes.clients:
                            bench.over_http(running, kind, batch, clients)
                    bench.over_http(running, kind, 1, 1)
            conversation = bench.conversation_cost()
            say(f"  {conversation}")
            say("")
            say(table(databases.name, bench.rows))
            say(conversation)
        finally:
            world.close()
            databases.close()


if __name__ == "__main__":
    main()
