"""INT-2: each webhook carries its event id, type, time, the API version and the object it
is about, as the API returns it: the paid invoice with its lines and totals, the renewed
subscription with its state, plan and period, the credit note, the usage threshold with meter, use,
inclusion and percent (`usage.threshold_crossed`, the old kind kept in `legacy_type`).
Real deliveries to a receiver on 127.0.0.1 that verifies every signature with
standardwebhooks (notify_servers.py), as tests/integration/test_notify.py does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice
from tabkeeper.domain.corrections import CreditRequest
from tabkeeper.services.credit_notes import credit_invoice
from tabkeeper.services.usage import ingest_batch
from tests.integration.conftest import JAN_1, make_world
from tests.integration.notify_servers import Receiver, webhook_receiver
from tests.integration.test_notify import dispatcher, endpoint

ENVELOPE = {"id", "type", "created_at", "api_version", "data", "timestamp"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


def received(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    assert all(post.verified for post in receiver.posts)
    return [post.document() for post in receiver.posts if post.document()["type"] == kind]


def check_envelope(document: dict[str, Any]) -> None:
    assert set(document) >= ENVELOPE
    assert re.fullmatch(r"evt_[0-9a-f]{24}", document["id"])
    assert document["api_version"] == "v1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["created_at"])
    assert document["data"]["organization"] == "acme"


def test_int2_invoice_paid_carries_the_invoice_with_lines_and_totals(
    engine: Engine, receiver: Receiver
) -> None:
    world = make_world(engine)
    world.organization("acme", {"alice": "owner"})
    endpoint(world, receiver, ["invoice.paid", "invoice.issued"])
    world.subscribe("acme")  # Basic, 30.00 USD a month, paid with the test card
    dispatcher(world).tick()
    (paid,) = received(receiver, "invoice.paid")
    (issued,) = received(receiver, "invoice.issued")
    check_envelope(paid)
    assert paid["id"] != issued["id"]
    invoice = paid["data"]["object"]
    assert invoice["number"] == paid["data"]["invoice"] == "INV-000001"
    assert isinstance(invoice["id"], int)
    assert invoice["status"] == "paid"
    assert invoice["currency"] == "USD"
    assert invoice["total_minor"] == 3000
    assert invoice["amount_due_minor"] == 3000
    assert invoice["pdf_url"] == f"/v1/invoices/{invoice['id']}.pdf"
    assert invoice["lines"] and sum(line["amount_minor"] for line in invoice["lines"]) == 3000
    assert {"kind", "description", "quantity", "unit_amount", "period_start"} <= set(
        invoice["lines"][0]
    )
    assert issued["data"]["object"]["id"] == invoice["id"]


def test_int2_subscription_renewed_carries_state_plan_and_period(
    engine: Engine, receiver: Receiver
) -> None:
    world = make_world(engine)
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme")
    endpoint(world, receiver, ["subscription.renewed"])
    world.worker().run_until(JAN_1 + timedelta(days=32))
    dispatcher(world).tick()
    (renewed,) = received(receiver, "subscription.renewed")
    check_envelope(renewed)
    subscription = renewed["data"]["object"]
    assert subscription["id"] == renewed["data"]["subscription"]
    assert subscription["organization"] == "acme"
    assert subscription["state"] == "active"
    assert subscription["plan"] == "basic"
    assert subscription["currency"] == "USD"
    assert subscription["period_start"] == "2026-02-01T00:00:00Z"
    assert subscription["period_end"] == "2026-03-01T00:00:00Z"
    assert "usage" in subscription and "addons" in subscription


def test_int2_a_usage_threshold_is_threshold_crossed_with_its_numbers(
    engine: Engine, receiver: Receiver
) -> None:
    """260 of the Pro plan's 500 included minutes cross 50%: one `usage.threshold_crossed`
    with meter, used, included and percent; an endpoint that asked for the new type and
    one that named the old kind (`usage.minutes_50`, an alias for one version) both get it."""
    world = make_world(engine)
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme", "pro")
    endpoint(world, receiver, ["usage.threshold_crossed"])
    with webhook_receiver() as old_style:
        endpoint(world, old_style, ["usage.minutes_50"])
        event = {
            "id": "call-1", "type": "call.ended", "org": "acme",
            "time": world.clock.now().isoformat(), "properties": {"duration_seconds": 260 * 60},
        }  # fmt: skip
        with world.billing() as b:
            assert ingest_batch(b, [event]).accepted == 1
        dispatcher(world).tick()
        (crossed,) = received(receiver, "usage.threshold_crossed")
        assert [post.document()["id"] for post in old_style.posts] == [crossed["id"]]
        assert all(post.verified for post in old_style.posts)
    check_envelope(crossed)
    assert crossed["legacy_type"] == "usage.minutes_50"
    assert crossed["data"]["object"] == {
        "meter": "minutes",
        "used": "260",
        "included": "500",
        "percent": 50,
        "period_start": "2026-01-01T00:00:00Z",
    }


def test_int2_credit_note_issued_carries_the_credit_note(
    engine: Engine, receiver: Receiver
) -> None:
    """A credit note of 12.00 on the paid INV-000001: its webhook's object is the credit
    note (not the invoice it corrects), with its number, currency, amounts and lines."""
    world = make_world(engine)
    world.organization("acme", {"alice": "owner"})
    world.subscribe("acme")
    endpoint(world, receiver, ["credit_note.issued"])
    with transaction(world.engine) as session:
        invoice_id = session.scalars(select(Invoice.id)).one()
    credit_invoice(world.billing, world.provider, invoice_id, CreditRequest(amount_minor=1200))
    dispatcher(world).tick()
    (issued,) = received(receiver, "credit_note.issued")
    check_envelope(issued)
    note = issued["data"]["object"]
    assert note["number"] == issued["data"]["credit_note"]
    assert note["invoice"] == "INV-000001" and note["invoice_id"] == invoice_id
    assert (note["currency"], note["total_minor"]) == ("USD", 1200)
    assert sum(line["amount_minor"] for line in note["lines"]) == 1200
