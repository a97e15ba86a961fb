"""The processes of a production layout, on this machine, for tests/ops: `tabkeeper
serve --workers N` and `tabkeeper worker` on one PostgreSQL, and the server of
scripts/with-postgres restarted with its own pg_ctl (TABKEEPER_TEST_PG_DATA,
TABKEEPER_TEST_PG_BIN, TABKEEPER_TEST_PG_RUN_AS)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TABKEEPER = str(Path(sys.executable).with_name("tabkeeper"))
PG_DATA = os.environ.get("TABKEEPER_TEST_PG_DATA")
PG_BIN = os.environ.get("TABKEEPER_TEST_PG_BIN")
PG_RUN_AS = shlex.split(os.environ.get("TABKEEPER_TEST_PG_RUN_AS", ""))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        """The pids of the processes this one started (uvicorn's API processes; also the
        resource tracker of Python's multiprocessing, which serves no request)."""
        found: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(pid) for pid in text)
        return [pid for pid in found if _is_api_process(pid)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _is_api_process(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing.resource_tracker" not in command


@dataclass
class Cluster:
    """The processes started; all stopped (SIGTERM, then SIGKILL) by `stop`."""

    directory: Path
    environment: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def _start(self, name: str, arguments: list[str], port: int | None = None) -> Process:
        log = self.directory / f"{name}.log"
        environment = dict(self.environment)
        if port is not None:
            metrics = self.directory / f"metrics-{name}"
            environment["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        with log.open("wb") as output:
            process = subprocess.Popen(
                [TABKEEPER, *arguments], env=environment, stdout=output, stderr=output
            )
        found = Process(name, process, log, port)
        self.processes.append(found)
        return found

    def serve(self, name: str, workers: int) -> Process:
        port = free_port()
        arguments = ["serve", "--port", str(port), "--workers", str(workers), "--no-clock"]
        return self._start(name, [*arguments, "--access-log"], port)

    def worker(self, name: str) -> Process:
        return self._start(name, ["worker", "--interval", "1"])

    def wait_ready(self, server: Process, seconds: float = 90.0) -> None:
        """Until /health/ready answers 200 (a process that ended fails at once)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise AssertionError(f"{server.name} ended:\n{server.log.read_text()[-3000:]}")
            try:
                answer = httpx.get(f"http://127.0.0.1:{server.port}/health/ready", timeout=5)
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{server.name} not ready:\n{server.log.read_text()[-3000:]}")

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def restart_postgres() -> None:
    """Stop the test server (fast: connections are ended) and start it again with the
    options it ran with (`pg_ctl restart` reads them from postmaster.opts)."""
    assert PG_DATA and PG_BIN, "scripts/with-postgres exports TABKEEPER_TEST_PG_DATA/_BIN"
    log = str(Path(PG_DATA).parent / "server.log")  # scripts/with-postgres's, the user's
    pg_ctl = [*PG_RUN_AS, f"{PG_BIN}/pg_ctl", "-D", PG_DATA, "-l", log, "-w", "-t", "60"]
    subprocess.run(
        [*pg_ctl, "-m", "fast", "restart"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
