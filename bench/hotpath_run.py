"""Running the hot-path benches: the server process (started and stopped here, on
127.0.0.1 only), its CPU time from /proc, an HTTP client with a kept-alive connection,
client processes released together, latencies, the machine and its load."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import platform
import queue
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hotpath_calls as tk
import sqlalchemy

from tabkeeper.db.prepared import PreparedRead

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def machine() -> str:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpus = len(os.sched_getaffinity(0))
    return (
        f"{cpus} CPUs, {model or platform.machine()}; Python {platform.python_version()}, "
        f"SQLAlchemy {sqlalchemy.__version__}; load average (1/5 min) now {load()}"
    )


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)


@contextmanager
def server(url: str) -> Iterator[Server]:
    """The tabkeeper server on `url`'s database, on a free port of 127.0.0.1; stopped
    (SIGINT, then SIGKILL after 10 s) when the block ends."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="tabkeeper-bench-server-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            tk.server_command(port), env=tk.server_environment(url),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    found = Server(port, process, log)
    try:
        _wait_healthy(found)
        yield found
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for line, count in server_errors(log).items():
            print(f"  the server logged {count} x {line}", flush=True)
        log.unlink(missing_ok=True)


def server_errors(log: Path) -> dict[str, int]:
    """The exceptions the server logged (their last line), with how many times."""
    found: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if re.match(r"^[\w.]+(Error|Exception): ", line):
            found[line[:200]] = found.get(line[:200], 0) + 1
    return found


def _wait_healthy(found: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if found.process.poll() is not None:
            raise SystemExit(f"the server ended at start:\n{found.log.read_text()[-3000:]}")
        with suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", found.port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                connection.close()
                return
        time.sleep(0.2)
    raise SystemExit("the server did not answer /health within 60 s")


class Http:
    """One kept-alive connection to the server, with the platform's key."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        self.connection.request(method, path, body=data, headers=self.headers)
        response = self.connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None

    def post(self, path: str, body: Any) -> Any:
        status, answer = self.call("POST", path, body)
        if status != 200:
            raise RuntimeError(f"POST {path}: {status} {str(answer)[:500]}")
        return answer

    def close(self) -> None:
        self.connection.close()


# -- clients ------------------------------------------------------------------------------


@dataclass
class Tally:
    """What one client did: operations, things counted (accepted events, admitted
    starts…), and the latency of each operation in seconds."""

    operations: int = 0
    counted: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    errors: int = 0
    """Requests the server answered with an error (5xx), where a bench counts them."""

    def add(self, other: Tally) -> None:
        self.operations += other.operations
        self.counted += other.counted
        self.errors += other.errors
        self.latencies.extend(other.latencies)
        self.cpu += other.cpu


Work = Callable[[float], Tally]
"""A client's prepared work: runs until done or until the deadline (a monotonic time)."""


def _client(make: Callable[[int], Work], index: int, ready: Any, go: Any, done: Any) -> None:
    try:
        work = make(index)
        ready.put(None)
        deadline = go.get()
        cpu = time.process_time()
        tally = work(deadline)
        tally.cpu = time.process_time() - cpu
        done.put(tally)
    except BaseException as error:
        ready.put(f"{type(error).__name__}: {error}")
        done.put(f"{type(error).__name__}: {error}")
        raise


@dataclass
class Ran:
    tally: Tally
    seconds: float
    server_cpu: float | None


def run_clients(
    clients: int, make: Callable[[int], Work], seconds: float, watched: Server | None = None
) -> Ran:
    """`clients` processes (forked), each preparing its work with `make(index)`, then
    released together; the wall time until the last one ends, and the CPU the `watched`
    server took meanwhile."""
    context = multiprocessing.get_context("fork")
    ready, done = context.Queue(), context.Queue()
    gates = [context.Queue() for _ in range(clients)]
    processes = [
        context.Process(target=_client, args=(make, i, ready, gates[i], done))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            answer = ready.get(timeout=300)
            if answer is not None:
                raise SystemExit(f"a client failed while preparing: {answer}")
        cpu_before = watched.cpu() if watched else None
        started = time.perf_counter()
        deadline = time.monotonic() + seconds
        for gate in gates:
            gate.put(deadline)
        total = Tally()
        for _ in processes:
            answer = _next(done, processes, seconds + 600)
            if isinstance(answer, str):
                raise SystemExit(f"a client failed: {answer}")
            total.add(answer)
        elapsed = time.perf_counter() - started
        server_cpu = None if watched is None or cpu_before is None else watched.cpu() - cpu_before
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.exitcode is None:
                process.terminate()
                process.join()
    return Ran(total, elapsed, server_cpu)


def _next(answers: Any, processes: list[Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return answers.get(timeout=1)
        except queue.Empty:
            if all(p.exitcode is not None for p in processes) and answers.empty():
                raise SystemExit("the clients ended without answering") from None
    raise SystemExit("a client did not finish in time")


def in_process(work: Work, seconds: float) -> Ran:
    """`work` in this process: wall time, and this process's CPU as the server's."""
    cpu = time.process_time()
    started = time.perf_counter()
    tally = work(time.monotonic() + seconds)
    elapsed = time.perf_counter() - started
    return Ran(tally, elapsed, time.process_time() - cpu)


class StatementCounter:
    """SQL statements an engine sends (`before_cursor_execute`: BEGIN included, COMMIT
    not, which is the driver's own call)."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self, *_arguments: Any) -> None:
        self.value += 1

    def reset(self) -> None:
        self.value = 0


def statement_counter(engine: Any) -> StatementCounter:
    """Counts what goes through SQLAlchemy, and the prepared reads (db/prepared.py) that
    go to the driver directly (in this process, whatever their engine)."""
    counter = StatementCounter()
    sqlalchemy.event.listen(engine, "before_cursor_execute", counter)
    sent = PreparedRead.run

    def counted(read: PreparedRead, on: Any, values: dict[str, Any]) -> list[Any]:
        counter()
        return sent(read, on, values)

    PreparedRead.run = counted  # type: ignore[method-assign,assignment]
    return counter
