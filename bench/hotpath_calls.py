"""Every call the hot-path benches (ingest.py, check.py, sessions.py, mixed.py) make into
tabkeeper's Python code, in one place: when a service's name or signature changes, this
module is the one to adapt. The benches themselves only speak HTTP, SQL on the tables
(hotpath_seed.py, hotpath_bare.py) and these functions.

In-process calls, each in its own transaction as the HTTP route does it:
- `ingest(engine, platform_id, events, now)`: `services.context.billing(...)` +
  `services.usage.ingest_batch(b, events)` (what `POST /v1/events` runs);
- `check(engine, platform_id, code, action, now)`: `billing(...)` +
  `services.organizations.organization_by_code` + `services.limits.check(b, org, action)`
  (what `POST /v1/check` runs for the platform's key);
- `start_session(engine, platform_id, code, agent, conversation, now)`: `billing(...)` +
  `services.session_starts.start_session_by_code(b, code, agent, conversation,
  visible=...)` (what `POST /v1/sessions/start` runs for the platform's key).
Set-up and checks (not timed) use the other functions below.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, Table

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import make_engine, read_transaction, transaction
from tabkeeper.db.migrate import upgrade
from tabkeeper.db.schema import METADATA
from tabkeeper.db.tables_usage import SCALE
from tabkeeper.domain.conversations import RecentWindows, stored_form
from tabkeeper.domain.metering import SESSION_STARTED
from tabkeeper.domain.periods import Period
from tabkeeper.domain.sessions import ConversationState, Direction, Message
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services import session_starts
from tabkeeper.services.access import create_api_key
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tabkeeper.services.checkout import subscribe_with_card
from tabkeeper.services.context import CatalogStore, billing, billing_for, unit_of_work
from tabkeeper.services.limits import CreditsDue, check_by_code
from tabkeeper.services.organizations import create_organization, organization_by_code
from tabkeeper.services.subscriptions import plan_of, subscription_of
from tabkeeper.services.usage import ingest_batch, measure_usage, recount_usage

__all__ = ["SCALE", "SESSION_STARTED", "make_engine", "upgrade"]

DEMO_CATALOG = Path(__file__).resolve().parents[1] / "src/tabkeeper/demo/catalog.yaml"
STORE = CatalogStore()
"""One catalog store per process, as the server keeps one."""


def demo_catalog() -> dict[str, Any]:
    """The demo platform's catalog (meters `sessions`, `interactions`, `minutes`)."""
    document = yaml.safe_load(DEMO_CATALOG.read_text(encoding="utf-8"))
    return dict(document["catalog"])


@dataclass(frozen=True, slots=True)
class PlatformMade:
    platform_id: int
    api_key: str


def create_platform(engine: Engine, now: datetime) -> PlatformMade:
    """A platform with the demo catalog (no trial: subscriptions are paid at once) and an
    API key."""
    with transaction(engine) as session:
        platform = ensure_platform(session, "bench", "Bench", now, {"trial": None})
        import_catalog(session, platform, demo_catalog(), now)
        _, key = create_api_key(session, platform.id, "bench", now)
        return PlatformMade(platform.id, key)


def create_subscribed(
    engine: Engine, platform_id: int, code: str, plan: str, now: datetime
) -> None:
    """An organization subscribed to `plan` at `now`, its first invoice paid by the
    sandbox's `card_ok`."""
    with billing(engine, platform_id, now, STORE) as b:
        create_organization(b, code, {"owner": "owner"})
    clock = SimulatedClock(now)
    work = unit_of_work(engine, platform_id, clock, STORE)
    subscribe_with_card(work, SandboxProvider(engine, clock), code, plan, "card_ok")


def create_plain(engine: Engine, platform_id: int, code: str, now: datetime) -> None:
    """An organization without a subscription (the bare statements' rows go there)."""
    with billing(engine, platform_id, now, STORE) as b:
        create_organization(b, code, {"owner": "owner"})


def set_session_limit(
    engine: Engine, platform_id: int, code: str, limit: int, now: datetime
) -> None:
    with billing(engine, platform_id, now, STORE) as b:
        session_starts.set_session_limit(b, organization_by_code(b, code), limit)


def conversation_state(messages: list[tuple[datetime, bool]]) -> dict[str, Any]:
    """The `conversations.state` document of a conversation with these (time, inbound)
    messages, as `services/metering.py` stores it (for seeding with plain inserts)."""
    state = ConversationState.of(
        Message(at, Direction.INBOUND if inbound else Direction.OUTBOUND)
        for at, inbound in messages
    )
    return stored_form(RecentWindows(None, state.window_starts, state.window_answered))


# -- the timed calls ----------------------------------------------------------------------


def ingest(
    engine: Engine, platform_id: int, events: list[dict[str, Any]], now: datetime
) -> tuple[int, int, int]:
    """(accepted, duplicates, refused) of one batch, as `POST /v1/events`."""
    with billing(engine, platform_id, now, STORE) as b:
        outcome = ingest_batch(b, events)
    return outcome.accepted, outcome.duplicates, len(outcome.refused)


def check(engine: Engine, platform_id: int, code: str, action: str, now: datetime) -> bool:
    """Allowed or not, as `POST /v1/check` answers the platform's key: the account in one
    statement, read alone (on PostgreSQL without BEGIN/COMMIT), the writing transaction
    only when credits are due."""
    try:
        with read_transaction(engine, one_statement=True) as session:
            b = billing_for(session, platform_id, now, STORE)
            return check_by_code(b, code, action, visible=_everyone, refresh=False).allowed
    except CreditsDue:
        with billing(engine, platform_id, now, STORE) as b:
            return check_by_code(b, code, action, visible=_everyone).allowed


def _everyone(_organization: object) -> bool:
    return True


def start_session(
    engine: Engine, platform_id: int, code: str, agent: str, conversation: str, now: datetime
) -> bool:
    """Admitted or not, as `POST /v1/sessions/start`: the account (with its counters and
    the conversation) in one statement, in the writing transaction."""
    with billing(engine, platform_id, now, STORE) as b:
        return session_starts.start_session_by_code(
            b, code, agent, conversation, visible=_everyone
        ).allowed


# -- checks (not timed) -------------------------------------------------------------------


def counters_and_recounts(
    engine: Engine, platform_id: int, code: str, now: datetime
) -> dict[str, tuple[Fraction, Fraction]]:
    """Per meter of the organization's current period: (the counter, the recount of the
    stored events). Exact when every pair is equal."""
    found: dict[str, tuple[Fraction, Fraction]] = {}
    with billing(engine, platform_id, now, STORE) as b:
        owner = organization_by_code(b, code)
        subscription = subscription_of(b, owner, lock=False)
        assert subscription is not None, code
        catalog, plan = plan_of(b, subscription)
        period = Period(
            subscription.period_start, subscription.period_end, subscription.period_index
        )
        for meter_code, meter in sorted(catalog.meters.items()):
            counted = measure_usage(b, owner, meter, period, plan.answered_only)
            recounted = recount_usage(b, owner, meter, period, plan.answered_only)
            found[meter_code] = (counted, recounted)
    return found


def server_command(port: int) -> list[str]:
    """The server as it is run: `tabkeeper serve` (uvicorn with the app, one process, the
    billing clock beside it) on 127.0.0.1, on TABKEEPER_DATABASE_URL."""
    tabkeeper = Path(sys.executable).with_name("tabkeeper")
    return [str(tabkeeper), "serve", "--host", "127.0.0.1", "--port", str(port)]


def server_environment(url: str) -> dict[str, str]:
    """The bench's clients all use one API key: its rate limit (OPS-4) is set out of
    reach, so the server's capacity is measured with the limiter's cost included."""
    limits = {"TABKEEPER_API_KEY_RATE": "1e9", "TABKEEPER_API_KEY_BURST": "1000000000"}
    return {**os.environ, **limits, "TABKEEPER_DATABASE_URL": url}


def table(name: str) -> Table:
    """One of tabkeeper's tables (with its column types), for plain inserts and reads."""
    return METADATA.tables[name]
