"""SUB-12 in the billing tab as plain form posts (no browser): the banner's "Pay now" with
nothing open says so and charges nothing; with open invoices and no card on file it is
refused next to the banner (409) with nothing written; an invoice row's "Pay now" on a
paid invoice is refused (409 invoice_not_open); another organization's invoice is 404.
SQLite and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from tabkeeper.db.tables import PaymentAttempt
from tests.api.billing import ACME, GLOBEX, make_billing_world, make_organization, subscribe
from tests.integration.conftest import FEB_1
from tests.portal.test_pages import followed, post, tab, text_of


def test_sub12_pay_now_refusals_in_the_tab(engine: Engine) -> None:
    api = make_billing_world(engine)
    make_organization(api, ACME)
    make_organization(api, GLOBEX)
    subscribe(api, api.member("acme", "alice"))
    subscribe(api, api.member("globex", "gina"), organization="globex")
    alice = tab(api, "alice")
    nothing = text_of(followed(alice, post(alice, "/portal/pay_now")))
    assert "There is nothing to pay: no invoice is open." in nothing
    charges = api.world.charges()

    from tabkeeper.services.organizations import organization_by_code
    from tabkeeper.services.payment_methods import clear_payment_methods

    with api.world.billing() as b:
        clear_payment_methods(b, organization_by_code(b, "acme"))
    api.world.worker().run_until(FEB_1 + timedelta(hours=1))  # the renewal has no card
    alice = tab(api, "alice")
    attempts = api.world.count(PaymentAttempt)
    refused = post(alice, "/portal/pay_now")
    assert refused.status_code == 409
    assert "There is no payment method on file" in text_of(refused)
    assert api.world.count(PaymentAttempt) == attempts
    assert api.world.charges() == charges + 1  # globex's renewal only

    first = alice.get("/portal/").text.split('action="/portal/invoices/', 1)
    assert len(first) == 2  # the open renewal has its own Pay now
    listed = api.platform.get("/v1/invoices", organization="acme").json()["data"]
    paid_id = next(i["id"] for i in listed if i["status"] == "paid")
    again = post(alice, f"/portal/invoices/{paid_id}/pay")
    assert again.status_code == 409 and "only an open invoice" in text_of(again)
    gina = tab(api, "gina", "globex")
    assert post(gina, f"/portal/invoices/{paid_id}/pay").status_code == 404
    assert post(gina, "/portal/invoices/0/pay").status_code == 404
