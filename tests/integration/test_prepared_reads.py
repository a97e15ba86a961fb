"""The account read sent straight to the driver (db/prepared.py) reads exactly what the
same statement reads through SQLAlchemy (LIM-1: the check reads the account once):
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


def _both(engine: Engine, read: Any) -> tuple[Any, Any]:
    with read_transaction(engine) as session:  # through SQLAlchemy, in a transaction
        assert one_statement_engine(session) is None
        through = read(session)
    with read_transaction(engine, one_statement=True) as session:
        assert one_statement_engine(session) is not None
        prepared = read(session)
        assert not session.in_transaction()  # it went to the driver, not the session
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
