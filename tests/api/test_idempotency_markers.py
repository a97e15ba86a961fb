"""An Idempotency-Key's "in progress" marker never strands the key (api/idempotency.py):
a marker whose request still runs elsewhere answers 409 `request_in_progress`; one left by
a process of this machine that is gone, or older than RUNNING_AT_MOST, is taken over and
the request runs once."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tabkeeper.api.idempotency import IN_PROGRESS, RUNNING_AT_MOST, caller_slot, this_process
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables_access import IdempotentRequest
from tabkeeper.services.access import Caller
from tests.api.conftest import ApiWorld

BODY = {"code": "acme"}


def _hash() -> str:
    return hashlib.sha256(b"/v1/organizations?\n" + b'{"code":"acme"}').hexdigest()


def _marker(api: ApiWorld, owner: dict[str, Any], age: timedelta) -> None:
    authorization = f"Bearer {api.platform.token}".encode()
    caller = caller_slot(Caller(api.world.platform_id), authorization)
    with transaction(api.world.engine) as session:
        session.add(
            IdempotentRequest(
                caller=caller, key="k1", request_hash=_hash(), status_code=IN_PROGRESS,
                body={"owner": owner}, created_at=api.world.clock.now() - age,
            )
        )  # fmt: skip


def _post(api: ApiWorld) -> Any:
    return api.platform.http.post(
        "/v1/organizations",
        content=b'{"code":"acme"}',
        headers={"Authorization": f"Bearer {api.platform.token}", "Idempotency-Key": "k1",
                 "Content-Type": "application/json"},
    )  # fmt: skip


def _stored(api: ApiWorld) -> IdempotentRequest:
    with transaction(api.world.engine) as session:
        row = session.scalars(select(IdempotentRequest)).one()
        return row


def test_a_marker_of_a_running_request_elsewhere_is_a_409(api: ApiWorld) -> None:
    """Another machine's request, claimed a minute ago: still running, so 409."""
    _marker(api, {"space": "another-machine", "pid": 1, "run": "x"}, timedelta(minutes=1))
    answer = _post(api)
    assert answer.status_code == 409
    assert answer.json()["code"] == "request_in_progress"
    assert api.platform.get("/v1/organizations").json()["data"] == []


def test_a_marker_older_than_running_at_most_is_taken_over(api: ApiWorld) -> None:
    """Another machine's marker past RUNNING_AT_MOST: the request runs, once."""
    _marker(api, {"space": "another-machine", "pid": 1, "run": "x"}, RUNNING_AT_MOST)
    answer = _post(api)
    assert answer.status_code == 201, answer.text
    assert _stored(api).status_code == 201
    again = _post(api)
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert len(api.platform.get("/v1/organizations").json()["data"]) == 1


def test_a_marker_of_a_gone_process_of_this_machine_is_taken_over(api: ApiWorld) -> None:
    """A process of this machine claimed the key a second ago and died: taken over."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    me = this_process()
    owner = {"space": me.space, "pid": int(gone.stdout), "run": "dead"}
    _marker(api, owner, timedelta(seconds=1))
    answer = _post(api)
    assert answer.status_code == 201, answer.text
    assert len(api.platform.get("/v1/organizations").json()["data"]) == 1


def test_a_stale_marker_of_this_process_is_taken_over(api: ApiWorld) -> None:
    """This process's own marker with no request of it running (its end was never
    recorded): taken over."""
    me = this_process()
    _marker(api, {"space": me.space, "pid": me.pid, "run": me.run}, timedelta(seconds=1))
    assert _post(api).status_code == 201


def test_a_marker_of_an_earlier_run_of_this_pid_is_taken_over(api: ApiWorld) -> None:
    """A restarted server that got the PID of the one that died (PID 1 in a container):
    the marker of the earlier run is taken over."""
    me = this_process()
    _marker(api, {"space": me.space, "pid": me.pid, "run": "earlier"}, timedelta(seconds=1))
    assert _post(api).status_code == 201
