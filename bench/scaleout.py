"""Scale-out (OPS-1): ingestion and session starts over HTTP with 1, 2 and 4 API processes
(`tabkeeper serve --workers N --no-clock`) on one PostgreSQL, beside the bare database
doing the same writes with the same clients in the same run; exact in every run.

    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/scaleout.py --database postgresql
    TABKEEPER_PG_DURABLE=1 scripts/with-postgres \\
        .venv/bin/python bench/scaleout.py --database postgresql --smoke

Set-up (not timed): the world of hotpath_seed.py (`--stored` events already stored). For
each `--processes` N (default 1, 2 and 4) one server with N API processes is started
(uvicorn's process manager; the billing clock off) and, with `--clients` client processes
(default 4):
- ingestion: `--events` message events in batches of `--batch` (default 100), each client
  to its own organization; the bare figure: one multi-row INSERT and the counter UPDATEs
  per batch, COMMIT (ingest.py's `Bench`);
- session starts: `--starts` starts, each a new conversation, of one organization with no
  cap; the bare figure: the conditional counter UPDATE and the start event's INSERT
  (sessions.py).
Server CPU is the manager's and all its API processes' utime+stime (/proc), per event or
per start. Checked after every run: events stored = accepted = sent and every counter
equals the recount of the stored events; starts admitted = the sessions counter = the
start events stored.

On a machine with 2 cores the clients, the API processes and PostgreSQL share them: what
more processes can show there is that throughput does not fall and stays exact, not that
it doubles.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hotpath_calls as tk
import sessions as starts_bench
from hotpath_bare import Bare
from hotpath_options import Sizes, add_size, databases_of, options
from hotpath_run import Ran, cpu_seconds, free_port, load, machine, percentile, run_clients
from hotpath_seed import World, build_world, require_exact, say
from ingest import Bench


@dataclass
class Servers:
    """`tabkeeper serve --workers N`: the manager and its API processes."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> list[int]:
        found = [self.process.pid]
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            found.extend(int(pid) for pid in (task / "children").read_text().split())
        return found

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())


@contextmanager
def servers(url: str, processes: int) -> Iterator[Servers]:
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="tabkeeper-scaleout-", suffix=".log")[1])
    command = [*tk.server_command(port), "--workers", str(processes), "--no-clock"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=tk.server_environment(url), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    found = Servers(port, process, log)
    try:
        _wait_ready(found, processes)
        yield found
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.unlink(missing_ok=True)


def _wait_ready(found: Servers, processes: int) -> None:
    """Until every API process has started (each logs 'Application startup complete')."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if found.process.poll() is not None:
            raise SystemExit(f"the server ended at start:\n{found.log.read_text()[-3000:]}")
        if found.log.read_text(errors="replace").count("Application startup complete") >= (
            processes
        ):
            return
        time.sleep(0.2)
    raise SystemExit(f"the API processes did not start:\n{found.log.read_text()[-3000:]}")


def starts(world: World, running: Servers, sizes: Sizes, clients: int, label: str) -> str:
    per_client = max(1, sizes.starts // clients)
    slug = label.split()[0]
    code = world.subscribed(f"starts-{slug}")
    organization_id = world.organization_id(code)
    world.engine.dispose()
    make = starts_bench._tabkeeper(world, running.port, code, per_client)
    ran = run_clients(clients, make, sizes.seconds, running)  # type: ignore[arg-type]
    starts_bench._verify(world, organization_id, ran, None, f"tabkeeper {label}")
    require_exact(world, code, f"after the {label} run")
    bare_id = world.plain(f"bare-starts-{slug}")
    setup = Bare(world.url)
    setup.create_counters([(bare_id, "sessions", world.start, "")])
    setup.close()
    world.engine.dispose()
    bare_make = starts_bench._bare(world, bare_id, starts_bench.UNCAPPED, per_client)
    bare = run_clients(clients, bare_make, sizes.seconds)
    starts_bench._verify(world, bare_id, bare, None, f"bare {label}")
    return _row("sessions/start", label, clients, ran, bare)


def _row(what: str, label: str, clients: int, ran: Ran, bare: Ran) -> str:
    n = ran.tally.operations
    rate, bare_rate = n / ran.seconds, bare.tally.operations / bare.seconds
    cpu = (ran.server_cpu or 0.0) * 1000 / n
    p99 = percentile([s * 1000 for s in ran.tally.latencies], 99)
    say(
        f"  {label} {what}: {clients} clients, {n:,} starts, {ran.tally.counted:,} admitted, "
        f"{rate:,.0f}/s p99 {p99:.1f} ms, {cpu:.2f} ms server CPU/start; bare "
        f"{bare_rate:,.0f}/s; ratio {rate / bare_rate:.3f}; exact; load {load()}"
    )
    return (
        f"| {label} | {what} | {clients} | {n:,} | {rate:,.0f} | {bare_rate:,.0f} "
        f"| {rate / bare_rate:.3f} | {cpu:.2f} | {p99:.1f} | {load()} |"
    )


def main() -> None:
    parser = options(__doc__, stored=100_000, background=20, events=20_000, batches=[100],
                     clients=[4])  # fmt: skip
    add_size(parser, "starts", int, 2_000, "session starts per run (all clients)")
    parser.add_argument("--processes", type=int, action="append",
                        help="API processes (repeat; default 1, 2 and 4)")  # fmt: skip
    arguments = parser.parse_args()
    sizes = Sizes.of(arguments, smoke={"starts": 200})
    counts = arguments.processes or [1, 2, 4]
    clients = sizes.clients[0]
    batch = sizes.batches[0]
    say(f"tabkeeper scale-out bench: {machine()}")
    for databases in databases_of(arguments):
        say(databases.describe())
        world = build_world(databases, "scaleout", sizes.stored, sizes.background)
        rows: list[str] = []
        try:
            bench = Bench(world, sizes)
            for count in counts:
                label = f"{count} process{'es' if count > 1 else ''}"
                with servers(world.url, count) as running:
                    done = len(bench.rows)
                    bench.over_http(running, "message", batch, clients)  # type: ignore[arg-type]
                    for row in bench.rows[done:]:
                        rows.append(
                            f"| {label} | events (batch {row.batch}) | {row.clients} "
                            f"| {row.events:,} | {row.per_second:,.0f} "
                            f"| {row.bare_per_second:,.0f} | {row.ratio:.3f} "
                            f"| {row.cpu_ms or 0:.3f} | | {row.load} |"
                        )
                    rows.append(starts(world, running, sizes, clients, label))
        finally:
            world.close()
            databases.close()
        say("")
        say(
            f"| {databases.name}: API processes | operation | clients | done | per second "
            "| bare per second | ratio | server CPU ms/op | p99 ms | load 1/5 min |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
        )
        for line in rows:
            say(line)


if __name__ == "__main__":
    main()
