"""A free plan's 0.00 invoices (issue 12, item 8; INV-1, SUB-3): issued paid, with no
charge and no `invoice.issued` notice (so no e-mail), at the start and at each renewal.
On SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

from datetime import timedelta

from tests.api.billing import make_organization
from tests.api.conftest import ApiWorld
from tests.integration.conftest import FEB_1


def test_inv1_a_free_plans_invoices_are_paid_without_a_charge_or_an_email(
    billing_api: ApiWorld,
) -> None:
    make_organization(billing_api)
    platform = billing_api.platform
    started = platform.post("/v1/subscriptions", {"organization": "acme", "plan": "trial"})
    assert started.status_code == 201, started.text
    billing_api.world.worker().run_until(FEB_1 + timedelta(hours=1))
    invoices = platform.get("/v1/invoices", organization="acme").json()["data"]
    assert [(i["status"], i["total_minor"], i["amount_due_minor"]) for i in invoices] == [
        ("paid", 0, 0),
        ("paid", 0, 0),
    ]
    assert all(i["paid_at"] for i in invoices)
    assert billing_api.world.charges() == 0
    notices = platform.get("/v1/notices", organization="acme", limit=100).json()["data"]
    kinds = [n["kind"] for n in notices]
    assert "invoice.issued" not in kinds
    assert kinds.count("invoice.paid") == 2
