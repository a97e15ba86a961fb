"""Notices through the API (NOT-1): the outbox, by organization and kind."""

from __future__ import annotations

from tests.api.billing import GLOBEX, make_organization, problem, subscribe
from tests.api.conftest import ApiWorld


def test_notices_list_the_outbox_by_organization_and_kind(billing_api: ApiWorld) -> None:
    """NOT-1, ACL-3: what happened, when, to which organization, with its payload; a
    member sees only their own organization's notices."""
    make_organization(billing_api)
    make_organization(billing_api, GLOBEX)
    alice = billing_api.member("acme", "alice")
    subscribe(billing_api, alice)
    subscribe(billing_api, billing_api.member("globex", "gina"), "globex")
    issued = alice.get("/v1/notices", kind="invoice.issued").json()["data"]
    assert [(n["organization"], n["at"]) for n in issued] == [("acme", "2026-01-01T00:00:00Z")]
    assert issued[0]["payload"] == {"invoice": "INV-000001", "total_minor": 3000}
    everything = billing_api.platform.get("/v1/notices").json()["data"]
    assert {n["organization"] for n in everything} == {"acme", "globex"}
    mine = alice.get("/v1/notices").json()["data"]
    assert mine == [n for n in everything if n["organization"] == "acme"]
    assert alice.get("/v1/notices", organization="acme").json()["data"] == mine
    assert alice.get("/v1/notices", kind="no.such.kind").json()["data"] == []
    problem(alice.get("/v1/notices", organization="globex"), 404, "not_found")
    problem(alice.get("/v1/notices", kind="x" * 61), 422, "invalid_request")
