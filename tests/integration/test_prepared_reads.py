"""The account read sent straight to the driver (db/prepared.py), alone or in a session's
transaction, reads exactly what the same statement reads through SQLAlchemy (LIM-1: the
check reads the account once):
every account fact, datetimes aware and in UTC, booleans, counters and credits, for an
organization with a subscription, usage and credits, one without a subscription, one
that does not exist, by code and by id, with and without counters and a conversation.
On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tabkeeper.db import accounts
from tabkeeper.db.engine import read_transaction
from tabkeeper.db.prepared import one_statement_engine
from tests.api.billing import ACME, GLOBEX, make_organization, subscribe
from tests.api.conftest import make_api_world
from tests.integration.test_credits import CATALOG


def _world(engine: Engine) -> int:
    api = make_api_world(engine)
    assert api.platform.post("/v1/catalog", {"catalog": CATALOG}).status_code == 201
    make_organization(api, ACME)
    make_organization(api, GLOBEX)
    subscribe(api, api.member("acme", "alice"))
    top_up = {"organization": "acme", "credits": 400, "price": "5.00"}
    assert api.platform.post("/v1/credits/top-up", top_up).status_code == 200
    event = {"id": "m1", "type": "message", "org": "acme", "agent": "bot",
             "conversation": "k1", "properties": {"direction": "inbound"}}  # fmt: skip
    assert api.platform.post("/v1/events", {"events": [event]}).json()["accepted"] == 1
    return api.world.platform_id


def _rows(engine: Engine, kind: tuple[str, Any], values: dict[str, Any]) -> list[list[Any]]:
    """The statement's rows three ways: through SQLAlchemy, prepared in a session's
    transaction, prepared alone; each as plain tuples with the column names."""
    statement = accounts._STATEMENTS[kind]
    prepared = accounts._PREPARED[kind]
    with read_transaction(engine) as session:
        through = [tuple(r) for r in session.connection().execute(statement, values)]
        keys = list(statement.selected_columns.keys())
        inside = prepared.run_in(session, values)
    alone = prepared.run(engine, values)
    assert all(list(r._fields) == keys for r in inside + alone)
    return [through, [tuple(r) for r in inside], [tuple(r) for r in alone]]


def read_values(kind: tuple[str, Any], key: str, platform_id: int, acme_id: int) -> dict[str, Any]:
    """The parameters of a prepared account read of `kind` for organization `key`
    ("nobody": one that does not exist)."""
    values: dict[str, Any] = {"platform": platform_id, "open_after": accounts._NEVER}
    if kind[0] == "code":
        values["code"] = key
    else:
        values["organization"] = acme_id if key == "acme" else -1
    if kind[1] == "starting":
        values["conversation"] = "k1"
    return values


def test_lim1_prepared_rows_equal_sqlalchemys(engine: Engine) -> None:
    """Every prepared kind of account read, for each organization: the same rows."""
    platform_id = _world(engine)
    with read_transaction(engine) as session:
        acme = accounts.account_by_code(session, platform_id, "acme")
        assert acme is not None
    for kind in accounts._PREPARED:
        for key in ("acme", "globex", "nobody"):
            values = read_values(kind, key, platform_id, acme.id)
            through, inside, alone = _rows(engine, kind, values)
            assert through == inside == alone, (kind, key)
            assert through or key != "acme", kind


def _both(engine: Engine, read: Any) -> tuple[Any, Any]:
    with read_transaction(engine) as session:  # in the session's transaction
        assert one_statement_engine(session) is None
        through = read(session)
    with read_transaction(engine, one_statement=True) as session:
        assert one_statement_engine(session) is not None
        prepared = read(session)
        assert not session.in_transaction()  # it went to a pooled connection alone
    return through, prepared


def test_lim1_prepared_account_reads_equal_sqlalchemys(engine: Engine) -> None:
    platform_id = _world(engine)
    for code in ("acme", "globex", "nobody"):
        for counters in (False, True):
            through, prepared = _both(
                engine,
                lambda s, c=code, n=counters: accounts.account_by_code(
                    s, platform_id, c, counters=n
                ),
            )
            assert through == prepared, (code, counters)
        through, prepared = _both(
            engine,
            lambda s, c=code: accounts.account_by_code(s, platform_id, c, conversation="k1"),
        )
        assert through == prepared, code
    acme = _both(engine, lambda s: accounts.account_by_code(s, platform_id, "acme", counters=True))
    facts = acme[1]
    assert facts is not None and facts.subscription is not None and facts.credits is not None
    assert facts.created_at.utcoffset() is not None and facts.counters
    assert isinstance(facts.trial_used, bool)
    by_id = _both(engine, lambda s: accounts.account_by_id(s, platform_id, facts.id, counters=True))
    assert by_id[0] == by_id[1] == facts
