"""Payment methods through the API (PAY-1, PAY-2): the card on file by brand and last 4,
never a number; declined and unknown cards change nothing."""

from __future__ import annotations

import pytest

from tabkeeper.db.tables import PaymentMethod
from tests.api.billing import make_organization, problem
from tests.api.conftest import ApiWorld, Client

NUMBERS = ("4242424242424242", "4242 4242 4242 4242", "5555555555554444", "5555-5555-5555-4444")


@pytest.fixture
def alice(billing_api: ApiWorld) -> Client:
    make_organization(billing_api)
    return billing_api.member("acme", "alice")


def test_add_a_card_and_see_it_by_brand_and_last_4(alice: Client) -> None:
    """PAY-2: the card on file shows brand, last 4 and expiry, never the number; a new
    card becomes the default."""
    first = alice.post(
        "/v1/payment_methods", {"organization": "acme", "card": "4242 4242 4242 4242"}
    )
    assert first.status_code == 201, first.text
    shown = first.json()
    assert (shown["brand"], shown["last4"], shown["default"]) == ("visa", "4242", True)
    assert (shown["exp_month"], shown["exp_year"], shown["provider"]) == (12, 2030, "sandbox")
    second = alice.post(
        "/v1/payment_methods", {"organization": "acme", "card": "5555-5555-5555-4444"}
    )
    assert second.status_code == 201
    listed = alice.get("/v1/payment_methods", organization="acme")
    cards = [(c["brand"], c["last4"], c["default"]) for c in listed.json()["data"]]
    assert cards == [("visa", "4242", False), ("mastercard", "4444", True)]
    for text in (first.text, second.text, listed.text):
        assert not any(number in text for number in NUMBERS)
        assert "pm_sbx" not in text  # nor the provider's token


@pytest.mark.parametrize(
    ("card", "status", "code"),
    [
        ("card_declined", 409, "card_declined"),
        ("4000 0000 0000 0002", 409, "card_declined"),
        ("1234 5678 9012 3456", 400, "unknown_card"),
        ("card_maybe", 400, "unknown_card"),
        ("", 422, "invalid_request"),
    ],
)
def test_declined_and_unknown_cards_save_nothing(
    billing_api: ApiWorld, alice: Client, card: str, status: int, code: str
) -> None:
    """PAY-1, PAY-2: a declined card is a 409, a card the sandbox does not know a 400
    whose message shows at most its last 4 digits; nothing is saved."""
    body = problem(
        alice.post("/v1/payment_methods", {"organization": "acme", "card": card}), status, code
    )
    assert "1234 5678" not in body["detail"]
    assert billing_api.world.count(PaymentMethod) == 0
    assert alice.get("/v1/payment_methods").json()["data"] == []


def test_unknown_fields_are_refused(billing_api: ApiWorld, alice: Client) -> None:
    body = {"organization": "acme", "card": "card_ok", "cvc": "123"}
    problem(alice.post("/v1/payment_methods", body), 422, "invalid_request")
    assert billing_api.world.count(PaymentMethod) == 0


def test_a_sub_account_has_no_cards_of_its_own(billing_api: ApiWorld, alice: Client) -> None:
    """SUB-2: billing is at the organization level."""
    made = billing_api.platform.post("/v1/organizations", {"code": "acme-eu", "parent": "acme"})
    assert made.status_code == 201
    problem(
        alice.post("/v1/payment_methods", {"organization": "acme-eu", "card": "card_ok"}),
        409,
        "sub_account",
    )
    assert billing_api.world.count(PaymentMethod) == 0
