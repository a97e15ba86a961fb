"""Seeding the demo platform (`tabkeeper serve --demo`; docs/demo.md).

`seed_demo(engine, settings, now)` puts the demo platform into an empty database: the
catalog of demo/catalog.yaml, an API key, and the organizations of demo/story.py, each
brought to its state by the real services on a simulated clock that runs from weeks ago
up to `now` (the simulator's machinery, tabkeeper/simulation/run.py: renewals, failed payments,
trial ends and scheduled changes are done by the billing clock on its way). Then it
makes a fresh portal session per member shown and returns a `DemoReport`.

Idempotent: when the demo platform is there already, nothing is added or changed; only
fresh portal sessions are made (they are signed tokens, nothing is stored). The API key
is derived from the platform's portal secret, so the same key is printed on every start
and stored once. A demo platform whose seeding was interrupted is refused with a clear
message: delete that database and start again.
"""

from __future__ import annotations

import hashlib
import hmac
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Organization, Platform
from tabkeeper.db.tables_access import ApiKey
from tabkeeper.demo.story import NAMES, ORGANIZATIONS, demo_scenario
from tabkeeper.domain.errors import Refused, TabkeeperError
from tabkeeper.domain.lifecycle import badge
from tabkeeper.domain.utc import require_utc
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services import discounts, organizations
from tabkeeper.services.access import KEY_PREFIX, create_portal_session
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tabkeeper.services.changes import upcoming_change
from tabkeeper.services.context import CatalogStore, billing_for
from tabkeeper.services.lifecycle import status_of
from tabkeeper.services.subscriptions import subscription_of
from tabkeeper.settings import Settings
from tabkeeper.simulation.run import Simulation
from tabkeeper.simulation.scenario import (
    OrganizationSpec,
    Scenario,
    TimelineStep,
    TopUp,
    build_scenario,
)
from tabkeeper.worker.clock import BillingClock

PLATFORM_CODE = "demo"
PLATFORM_NAME = "Demo Agents"
PORTAL_LIFETIME = timedelta(days=30)
ACL_ORGANIZATION = "harbor"
"""The organization whose billing admin and plain member get portal URLs too (ACL-1)."""


class DemoIncomplete(Refused):
    code = "demo_incomplete"


class DemoStepRefused(TabkeeperError):
    """A step of the demo's story was refused: a bug of the story, never a result."""

    code = "demo_step_refused"


@dataclass(frozen=True, slots=True)
class DemoEntry:
    """One portal URL to print: a member of a demo organization and its card's state."""

    organization: str
    organization_name: str
    member: str
    role: str
    state: str
    """The subscription state (SCENARIOS.md), with `+canceling` while a cancellation
    waits for the period's end and `+upcoming` with a scheduled change."""
    badge: str
    token: str
    """A portal session of the member (ps_...), valid for PORTAL_LIFETIME."""

    def portal_url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/portal/enter?token={self.token}"


@dataclass(frozen=True, slots=True)
class DemoReport:
    platform_id: int
    api_key: str
    seeded: bool
    """True when this call created the demo; False when it was there already."""
    entries: tuple[DemoEntry, ...]
    expires_at: datetime
    """When the portal sessions of `entries` expire."""


class DemoRun(Simulation):
    """The simulator's run of the demo scenario on the server's own database, for the
    demo platform, with the organizations' display names. Any refusal is an error."""

    def __init__(self, engine: Engine, platform_id: int, scenario: Scenario) -> None:
        self.scenario = scenario
        self.engine = engine
        self.clock = SimulatedClock(self.scenario.start())
        self.provider = SandboxProvider(engine, self.clock)
        self.store = CatalogStore()
        self.worker = BillingClock(engine, self.provider, self.clock, store=self.store)
        self.platform_id = platform_id
        self.waiting = sorted(
            self.scenario.organizations.values(), key=lambda spec: spec.created_at
        )
        self.cards = {
            code: spec.payment_method for code, spec in self.scenario.organizations.items()
        }
        self.checks, self.refusals, self.demo_requests = [], [], []

    def _create(self, spec: OrganizationSpec) -> None:
        with self._billing() as b:
            organizations.create_organization(
                b,
                spec.code,
                {member: role.value for member, role in spec.members.items()},
                name=NAMES.get(spec.code),
                parent=spec.parent,
            )
            if spec.billing_details is not None:  # INV-7
                organization = organizations.organization_by_code(b, spec.code)
                discounts.save_billing_details(b, organization, spec.billing_details)

    def _refuse(self, step: TimelineStep, code: str, message: str) -> None:
        """A refused event of an `events` step: an error of the demo, not a result."""
        raise DemoStepRefused(f"demo step {step.index} ({step.do}) was refused: {message}")

    def run_to_end(self) -> None:
        for step in self.scenario.timeline:
            self.advance(step.at)
            try:
                self._do(step)
            except DemoStepRefused:
                raise
            except TabkeeperError as error:
                raise DemoStepRefused(
                    f"demo step {step.index} ({step.do}, {getattr(step, 'org', None)}) was "
                    f"refused: {error.message}"
                ) from error
        self.advance(self.scenario.until)


def seed_demo(engine: Engine, settings: Settings | None, now: datetime) -> DemoReport:
    """The demo platform, seeded on the first call, found on later ones (see the module
    docstring). `settings` are the server's (unused for now: kept for the entry point's
    symmetry); `now` is the real time the demo's story ends at."""
    now = require_utc(now, "now")
    seeded = False
    with transaction(engine) as session:
        platform = _platform(session)
    if platform is None:
        document = demo_scenario(now, with_credits=TopUp in Simulation._HANDLERS)
        scenario = build_scenario(document)
        platform_id = _create_platform(engine, document, scenario.start())
        DemoRun(engine, platform_id, scenario).run_to_end()
        seeded = True
    with transaction(engine) as session:
        platform = _platform(session)
        assert platform is not None
        entries = _entries(session, platform, now)
        api_key = _api_key(session, platform, now)
        return DemoReport(platform.id, api_key, seeded, entries, now + PORTAL_LIFETIME)


def _platform(session: Session) -> Platform | None:
    return session.scalars(select(Platform).where(Platform.code == PLATFORM_CODE)).first()


def _create_platform(engine: Engine, document: dict[str, object], start: datetime) -> int:
    with transaction(engine) as session:
        settings = document["settings"]
        assert isinstance(settings, dict)
        platform = ensure_platform(session, PLATFORM_CODE, PLATFORM_NAME, start, settings)
        catalog = document["catalog"]
        assert isinstance(catalog, dict)
        import_catalog(session, platform, catalog, start)
        return platform.id


def _entries(session: Session, platform: Platform, now: datetime) -> tuple[DemoEntry, ...]:
    b = billing_for(session, platform.id, now, CatalogStore())
    found = {
        row.code: row
        for row in session.scalars(
            select(Organization).where(Organization.platform_id == platform.id)
        )
    }
    missing = [org.code for org in ORGANIZATIONS if org.code not in found]
    if missing:
        raise DemoIncomplete(
            f"The demo platform in this database is incomplete (no {', '.join(missing)}): "
            "its seeding was interrupted. Delete the database (or point "
            "TABKEEPER_DATABASE_URL at a new one) and run `tabkeeper serve --demo` again."
        )
    entries = []
    for org in ORGANIZATIONS:
        row = found[org.code]
        subscription = subscription_of(b, row, lock=False)
        status = status_of(subscription, row)
        state = status.state.value
        if status.cancel_at_period_end:
            state += "+canceling"
        if subscription is not None and upcoming_change(b, subscription) is not None:
            state += "+upcoming"
        shown = [org.members[0]]
        if org.code == ACL_ORGANIZATION:
            shown = list(org.members)
        for member, role in shown:
            token, _ = create_portal_session(
                session, platform.id, row, member, now, lifetime=PORTAL_LIFETIME
            )
            entries.append(
                DemoEntry(org.code, row.name, member, role, state, badge(status, now), token)
            )
    return tuple(entries)


def _api_key(session: Session, platform: Platform, now: datetime) -> str:
    """The demo's API key: derived from the platform's portal secret (made by the first
    portal session), so that every start prints the same key; stored hashed, once."""
    assert platform.portal_secret is not None
    digest = hmac.new(bytes.fromhex(platform.portal_secret), b"demo api key", "sha256").digest()
    key = KEY_PREFIX + "demo_" + urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    key_hash = hashlib.sha256(key.encode("utf-8")).hexdigest()
    if session.scalars(select(ApiKey.id).where(ApiKey.key_hash == key_hash)).first() is None:
        session.add(
            ApiKey(
                platform_id=platform.id,
                name="demo",
                prefix=key[:10],
                key_hash=key_hash,
                created_at=now,
            )
        )
        session.flush()
    return key


def demo_lines(report: DemoReport, base_url: str) -> list[str]:
    """What `tabkeeper serve --demo` prints: the API key, one portal URL per member shown
    (state, organization, member), and where the API docs are."""
    base = base_url.rstrip("/")
    verb = "seeded" if report.seeded else "found (already seeded; nothing changed)"
    lines = [
        f"demo platform {verb}",
        f"API key: {report.api_key}",
        f"  (for example: curl -H 'Authorization: Bearer {report.api_key}' {base}/v1/invoices)",
        f"portal URLs (valid until {report.expires_at:%Y-%m-%d %H:%M} UTC):",
    ]
    for entry in report.entries:
        who = f"{entry.organization_name} ({entry.member}, {entry.role})"
        state = f"{entry.state} [{entry.badge}]"
        lines.append(f"  {state:<42} {who:<38} {entry.portal_url(base)}")
    lines.append(f"API docs: {base}/docs")
    return lines
