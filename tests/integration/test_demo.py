"""The demo platform of `tabkeeper serve --demo` (docs/demo.md): seeded through the real
services into every subscription state (SUB-1), once (a second start changes nothing),
with an API key and portal URLs that work (ACL-3), and printed by the CLI."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from tabkeeper import cli
from tabkeeper.api.app import create_app
from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.db.migrate import upgrade
from tabkeeper.db.schema import METADATA
from tabkeeper.db.tables import (
    DemoRequest,
    Invoice,
    InvoiceLine,
    Member,
    Organization,
    Platform,
    SubscriptionAddon,
)
from tabkeeper.demo import DemoReport, demo_lines, seed_demo
from tabkeeper.demo.seed import PLATFORM_CODE, DemoIncomplete, DemoRun, _create_platform
from tabkeeper.demo.story import ORGANIZATIONS, demo_catalog, demo_scenario
from tabkeeper.domain.catalog import build_catalog
from tabkeeper.domain.errors import TabkeeperError
from tabkeeper.domain.terms import build_terms
from tabkeeper.pdf import invoice_pdf
from tabkeeper.services.access import caller_for_key, caller_for_session
from tabkeeper.services.catalog import ensure_platform
from tabkeeper.services.context import CatalogStore
from tabkeeper.settings import Settings
from tabkeeper.simulation.run import Simulation
from tabkeeper.simulation.scenario import TopUp, build_scenario

NOW = datetime(2026, 3, 17, 14, 37, tzinfo=UTC)

EXPECTED = {
    "northwind": ("trialing", "Trial subscription"),
    "bluebird": ("trialing", "Trial ending soon"),
    "harbor": ("active", "Active subscription"),
    "summit": ("active", "Active subscription"),
    "copper": ("past_due", "Payment issue"),
    "maple": ("canceled", "Canceled subscription"),
    "orchid": ("expired", "Expired subscription"),
    "lumen": ("active+upcoming", "Active subscription"),
    "atlas": ("active", "Active subscription"),
    "birch": ("active+canceling", "Canceled subscription"),
    "fjord": ("active", "Active subscription"),  # INV-7
    "pine": ("active", "Active subscription"),  # INV-6
}
"""SUB-1: the state and badge of each demo organization's card."""


def row_counts(engine: Engine) -> dict[str, int]:
    with transaction(engine) as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in METADATA.sorted_tables
        }


def states(report: DemoReport) -> dict[str, tuple[str, str]]:
    return {entry.organization: (entry.state, entry.badge) for entry in report.entries}


@pytest.mark.parametrize(
    "now",
    [NOW, datetime(2026, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)],
    ids=["mid-month", "first-of-month", "leap-day"],
)
def test_demo_has_every_state_and_seeding_twice_changes_nothing(
    engine: Engine, now: datetime
) -> None:
    """SUB-1: the demo organizations are trialing, trial ending soon, active, past_due,
    canceled, expired, active with an upcoming change and active while canceling,
    whatever day it is seeded; a second seeding adds and changes nothing, prints the same
    API key and fresh portal sessions that authenticate as each member (ACL-3)."""
    first = seed_demo(engine, None, now)
    assert first.seeded
    assert states(first) == EXPECTED
    counts = row_counts(engine)

    again = seed_demo(engine, Settings(database_url="sqlite://"), now)
    assert not again.seeded
    assert row_counts(engine) == counts
    assert again.api_key == first.api_key
    assert states(again) == EXPECTED
    with transaction(engine) as session:
        assert caller_for_key(session, again.api_key).platform_id == again.platform_id
        for entry in again.entries:
            caller = caller_for_session(session, entry.token, now)
            organization = session.get(Organization, caller.organization_id)
            assert organization is not None and organization.code == entry.organization
            assert (caller.member, caller.role) == (entry.member, entry.role)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoReport]]:
    """One demo on a SQLite file of its own, seeded once for the read-only tests."""
    path = tmp_path_factory.mktemp("demo") / "tabkeeper.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine, seed_demo(engine, None, NOW)
    engine.dispose()


def test_demo_organizations_have_members_slots_invoices_and_a_demo_request(
    seeded: tuple[Engine, DemoReport],
) -> None:
    """ACL-1, ADD-1, CAT-2, INV-1, SUB-8: harbor has an owner, a billing admin and a plain
    member; atlas has agent and seat slots and asked for an Enterprise demo; summit's
    renewal bills January's minutes over the included 500; copper's last renewal is open."""
    engine, report = seeded
    with transaction(engine) as session:
        by_code = {row.code: row for row in session.scalars(select(Organization))}
        assert {org.code: org.name for org in ORGANIZATIONS} == {
            code: row.name for code, row in by_code.items()
        }
        roles = session.execute(
            select(Member.code, Member.role).where(Member.organization_id == by_code["harbor"].id)
        ).all()
        assert sorted(roles) == [("ben", "billing_admin"), ("hana", "owner"), ("mia", "member")]
        slots = dict(
            session.execute(select(SubscriptionAddon.addon_code, SubscriptionAddon.quantity)).all()
        )
        assert slots == {"extra_agent": 2, "extra_seat": 3}
        (request,) = session.scalars(select(DemoRequest)).all()
        assert (request.organization_id, request.plan_code) == (by_code["atlas"].id, "enterprise")
        usage = session.scalars(select(InvoiceLine).where(InvoiceLine.kind == "usage")).all()
        assert any(line.description.startswith("Minutes:") for line in usage)
        open_invoices = session.scalars(select(Invoice).where(Invoice.status == "open")).all()
        assert [row.organization_id for row in open_invoices] == [by_code["copper"].id]
        if TopUp in Simulation._HANDLERS:  # CRD-1: once the simulator tops up credits
            top_ups = session.scalars(
                select(Invoice.organization_id)
                .join(InvoiceLine, InvoiceLine.invoice_id == Invoice.id)
                .where(InvoiceLine.kind == "credits")
            ).all()
            assert sorted(top_ups) == sorted([by_code["harbor"].id, by_code["atlas"].id])
    # one portal URL per organization's owner, plus harbor's billing admin and member
    assert [e.organization for e in report.entries if e.role == "owner"] == [
        org.code for org in ORGANIZATIONS
    ]
    assert len(report.entries) == len(ORGANIZATIONS) + 2


def test_demo_catalog_has_the_shapes_of_the_five_sources() -> None:
    """CAT-1, CAT-2, CAT-5, USE-4, USE-5, CRD-1: session plans with a trial and an
    answered-only plan, voice plans with included minutes and overage, AI credit rates
    with a credit price and included credits, agent and seat add-ons, and a sales-led
    Enterprise plan with an add-on that requires it."""
    document = demo_catalog()
    terms = build_terms(document["settings"])
    catalog = build_catalog(document["catalog"], terms.currency, "catalog")
    plans = catalog.plans
    assert terms.trial is not None and terms.trial.plan in plans
    assert any(plan.answered_only for plan in plans.values())
    assert plans["voice"].includes and "minutes" in plans["voice"].overage
    assert catalog.ai_features and catalog.credit_price is not None
    assert any(plan.credits is not None for plan in plans.values())
    adds = {code: set(addon.adds) for code, addon in catalog.addons.items()}
    assert {"agents"} in adds.values() and {"seats"} in adds.values()
    assert plans["enterprise"].sales_led
    assert catalog.addons["enterprise_plus"].requires_plans == ("enterprise",)
    assert not {"proto", "operator"} & {name.lower() for name in plans}


def test_demo_is_visible_through_the_api_and_its_invoices_print(
    seeded: tuple[Engine, DemoReport],
) -> None:
    """ACL-3, INV-3: the printed API key lists the demo's subscriptions in their states,
    and a demo invoice with a usage line downloads as a PDF showing its lines."""
    engine, report = seeded
    app = create_app(Settings(database_url="sqlite://"), engine, store=CatalogStore())
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {report.api_key}"}
    listed = client.get("/v1/subscriptions", params={"limit": 100}, headers=headers)
    assert listed.status_code == 200, listed.text
    found = {row["organization"]: row["state"] for row in listed.json()["data"]}
    assert found == {code: state.split("+")[0] for code, (state, _) in EXPECTED.items()}
    with transaction(engine) as session:
        line = session.scalars(
            select(InvoiceLine).where(InvoiceLine.description.startswith("Minutes:"))
        ).one()
        invoice = session.get(Invoice, line.invoice_id)
        assert invoice is not None
        data = invoice_pdf(session, report.platform_id, invoice.id)
    text = " ".join(
        " ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(data)).pages
    )
    assert line.description in text and "Demo Agents" in text


def test_an_interrupted_demo_is_refused_with_what_to_do(engine: Engine) -> None:
    """A demo platform without its organizations (seeding interrupted) is not seeded
    over: the error says to start from a new database."""
    with transaction(engine) as session:
        ensure_platform(session, PLATFORM_CODE, "Demo Agents", NOW, {})
    with pytest.raises(DemoIncomplete, match="Delete the database"):
        seed_demo(engine, None, NOW)


def test_serve_demo_prints_the_key_and_a_portal_url_per_organization(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`tabkeeper serve --demo` seeds after migrating, then prints the API key, one
    portal URL per organization (http://HOST:PORT/portal/enter?token=...) whose token
    authenticates, and the API docs URL, before the server starts; started again, it
    prints the same key and seeds nothing."""
    monkeypatch.setenv("TABKEEPER_DATABASE_URL", database_url)
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **options: served.append(options))
    arguments = ["serve", "--demo", "--no-clock", "--port", "8123"]

    first = CliRunner().invoke(cli.app, arguments)
    assert first.exit_code == 0, first.output
    asked = {"host": "127.0.0.1", "port": 8123, "log_level": "info", "access_log": False}
    assert len(served) == 1 and served[0].items() >= asked.items()  # and OPS-1/3's options
    key = re.search(r"API key: (tk_\S+)", first.output)
    assert key is not None
    urls = re.findall(r"http://127\.0\.0\.1:8123/portal/enter\?token=(ps_\S+)", first.output)
    assert len(urls) == len(ORGANIZATIONS) + 2
    for org in ORGANIZATIONS:
        assert org.name in first.output
    assert "API docs: http://127.0.0.1:8123/docs" in first.output
    assert "demo platform seeded" in first.output

    again = CliRunner().invoke(cli.app, arguments)
    assert again.exit_code == 0, again.output
    assert "already seeded" in again.output
    assert f"API key: {key.group(1)}" in again.output
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            assert session.scalar(select(func.count()).select_from(Platform)) == 1
            now = SystemClock().now()  # the CLI seeded with the real clock
            for token in urls:
                assert caller_for_session(session, token, now).member
    finally:
        engine.dispose()


def test_demo_lines_are_what_serve_prints(seeded: tuple[Engine, DemoReport]) -> None:
    """The printout: the key, then per member `state [badge]`, organization, member and
    portal URL, then the API docs."""
    _, report = seeded
    lines = demo_lines(report, "http://localhost:9000/")
    assert lines[1] == f"API key: {report.api_key}"
    assert lines[-1] == "API docs: http://localhost:9000/docs"
    bluebird = next(line for line in lines if "Bluebird Travel" in line)
    assert "trialing [Trial ending soon]" in bluebird
    assert "http://localhost:9000/portal/enter?token=ps_" in bluebird


def test_without_credit_top_ups_the_story_has_none() -> None:
    """The demo's story tops up credits and uses AI features only where the simulator
    can carry top-ups out; every step happens by `now`, in time order."""
    with_credits = demo_scenario(NOW, with_credits=True)["timeline"]
    without = demo_scenario(NOW, with_credits=False)["timeline"]
    assert {step["do"] for step in with_credits} - {step["do"] for step in without} == {"top_up"}
    assert [step["at"] for step in without] == sorted(step["at"] for step in without)
    assert without[-1]["at"] <= "2026-03-17T14:37:00Z"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"do": "subscribe", "org": "acme", "plan": "enterprise"}, "subscribe, acme"),
        ({"do": "events", "events": [{"id": "e1", "type": "call.ended", "org": "nobody",
                                      "properties": {"duration_seconds": 5}}]},
         "unknown organization"),
    ],
)  # fmt: skip
def test_a_refused_demo_step_is_an_error(
    engine: Engine, step: dict[str, Any], message: str
) -> None:
    """Seeding stops at a step the services refuse (a sales-led plan, a bad event): a
    demo that silently lacks a state would mislead."""
    document = demo_catalog()
    document["organizations"] = {"acme": {"created_at": "2026-03-01T00:00:00Z",
                                          "payment_method": "card_ok"}}  # fmt: skip
    document["timeline"] = [{"at": "2026-03-02T00:00:00Z", **step}]
    document["until"] = "2026-03-03T00:00:00Z"
    scenario = build_scenario(document)
    platform_id = _create_platform(engine, document, scenario.start())
    with pytest.raises(TabkeeperError, match=message) as refused:
        DemoRun(engine, platform_id, scenario).run_to_end()
    assert refused.value.code == "demo_step_refused"


def test_inv6_inv7_demo_has_an_eu_organization_with_vat_and_one_with_a_coupon(
    seeded: tuple[Engine, DemoReport],
) -> None:
    """INV-7: fjord (Germany, VAT number) pays 19% VAT on Starter 29.00 (551); INV-6:
    pine's Growth invoices carry the Welcome coupon, 20% of 99.00 (-1980), for its first
    periods."""
    engine, _ = seeded
    with transaction(engine) as session:
        by_code = {row.code: row.id for row in session.scalars(select(Organization))}

        def lines(code: str) -> list[tuple[str, int]]:
            return [
                (line.kind, line.amount_minor)
                for line in session.scalars(
                    select(InvoiceLine)
                    .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                    .where(Invoice.organization_id == by_code[code])
                    .order_by(Invoice.id, InvoiceLine.position)
                )
            ]

        fjord, pine = lines("fjord"), lines("pine")
        assert fjord[:2] == [("subscription", 2900), ("tax", 551)]
        assert pine[:2] == [("subscription", 9900), ("discount", -1980)]
        assert ("tax", 551) in fjord[2:] and ("discount", -1980) in pine[2:]  # the renewal
