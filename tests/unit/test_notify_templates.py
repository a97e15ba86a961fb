"""The e-mail of every notice kind (NOT-1, TRI-3): each kind renders, with and without its
payload, and shows the payload's numbers; unknown kinds get the generic e-mail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabkeeper.notify.kinds import KINDS
from tabkeeper.notify.templates import instant, money, render_email, template_name

AT = datetime(2026, 1, 8, tzinfo=UTC)

# kind -> (payload, texts the e-mail must show, words of the subject)
EXAMPLES: dict[str, tuple[dict[str, Any], tuple[str, ...], str]] = {
    "trial.sessions_60": ({"used": 30, "included": 50}, ("30 of its 50",), "60%"),
    "trial.sessions_90": ({"used": 45, "included": 50}, ("45 of its 50",), "90%"),
    "trial.days_7": ({"ends_at": "2026-01-15T00:00:00Z"}, ("2026-01-15 00:00 UTC",), "7 days"),
    "trial.days_2": ({"used": 3, "included": 50}, ("3 of its 50",), "2 days"),
    "trial.ended": ({"reason": "sessions", "plan": "trial"}, ("sessions are used",), "ended"),
    "limit.sessions_80": ({"used": 80, "limit": 100}, ("80 of the 100",), "80%"),
    "limit.sessions_100": ({"used": 100, "limit": 100}, ("100 of the 100", "refused"), "reached"),
    "payment.failed": (
        {"invoice": "INV-000007", "amount_minor": 4900, "currency": "USD",
         "reason": "card_declined", "next_retry_at": "2026-02-02T00:00:00Z"},
        ("49.00 USD", "INV-000007", "card_declined", "2026-02-02 00:00 UTC"),
        "failed",
    ),
    "subscription.past_due": (
        {"plan": "pro", "grace_ends_at": "2026-02-08T00:00:00Z"},
        ("pro", "2026-02-08 00:00 UTC"),
        "past due",
    ),
    "subscription.suspended": ({"plan": "pro"}, ("pro", "stopped"), "stopped"),
    "subscription.renewed": (
        {"plan": "basic", "period_end": "2026-03-01T00:00:00Z"},
        ("basic", "2026-03-01 00:00 UTC"),
        "renewed",
    ),
    "subscription.changed": ({"plan": "pro", "from_plan": "basic"}, ("pro", "basic"), "plan"),
    "subscription.canceled": (
        {"plan": "pro", "period_end": "2026-02-01T00:00:00Z"},
        ("2026-02-01 00:00 UTC", "Resume"),
        "canceled",
    ),
    "subscription.ended": (
        {"plan": "pro", "retention_ends_at": "2026-03-03T00:00:00Z"},
        ("2026-03-03 00:00 UTC",),
        "ended",
    ),
    "invoice.issued": (
        {"invoice": "INV-000002", "total_minor": 5100, "amount_due_minor": 3100},
        ("INV-000002", "51.00 USD", "31.00 USD"),
        "INV-000002",
    ),
    "invoice.paid": ({"invoice": "INV-000002", "amount_minor": 5100}, ("51.00 USD",), "paid"),
    "invoice.uncollectible": (
        {"invoice": "INV-000003", "amount_minor": 1000},
        ("INV-000003", "10.00 USD", "uncollectible"),
        "written off",
    ),
    "credits.exhausted": (
        {"used": 1000, "next_grant_at": "2026-02-01T00:00:00Z"},
        ("1000 used", "2026-02-01 00:00 UTC", "top-up"),
        "credits",
    ),
    "subscription.trial_ending": (  # SUB-15
        {"plan": "pro", "ends_at": "2026-01-15T00:00:00Z", "amount_minor": 4900},
        ("pro", "2026-01-15 00:00 UTC", "49.00 USD", "cancel"),
        "3 days",
    ),
    "subscription.trial_converted": (  # SUB-15
        {"plan": "pro", "period_end": "2026-02-15T00:00:00Z"},
        ("pro", "2026-02-15 00:00 UTC", "first paid period"),
        "active",
    ),
    "credits.low": (  # CRD-7
        {"balance": 40, "threshold": 50},
        ("below 50", "40 credits are left", "top-up"),
        "low on AI credits",
    ),
    "phone_numbers.released": (
        {"numbers": ["+15550001", "+15550002"]},
        ("- +15550001", "- +15550002"),
        "released",
    ),
    "demo.requested": ({"plan": "enterprise"}, ("enterprise", "Acme Voice"), "Request received"),
    "invoice.voided": ({"invoice": "INV-000003", "total_minor": 4900}, ("49.00 USD",), "void"),
    "credit_note.issued": (
        {"credit_note": "CN-000001", "invoice": "INV-000002", "total_minor": 1000,
         "refund_minor": 600, "credited_minor": 400},
        ("CN-000001", "INV-000002", "10.00 USD", "6.00 USD", "4.00 USD"),
        "Credit note",
    ),
    "payment.action_required": (  # PAY-4
        {"invoice": "INV-000007", "amount_minor": 4900, "url": "https://billing.test/pay/pi_1"},
        ("49.00 USD", "INV-000007", "https://billing.test/pay/pi_1", "3-D Secure"),
        "needs your confirmation",
    ),
    "payment.disputed": (  # PAY-3
        {"invoice": "INV-000007", "reason": "fraudulent"},
        ("INV-000007", "fraudulent", "disputed"),
        "disputed",
    ),
    "spend_cap_80": (  # LIM-6
        {"spent_minor": 4000, "spend_cap_minor": 5000},
        ("40.00 USD", "80% of its spend cap of 50.00 USD"),
        "80% of its spend cap",
    ),
    "spend_cap_100": (  # LIM-6
        {"spent_minor": 5000, "spend_cap_minor": 5000},
        ("spend cap of 50.00 USD", "overage stops"),
        "reached its spend cap",
    ),
    "credits.auto_top_up": (  # CRD-6
        {"credits": 500, "price_minor": 500, "invoice": "INV-000004", "balance": 590},
        ("500 credits were bought for 5.00 USD", "INV-000004", "590 credits"),
        "topped up automatically",
    ),
    "credits.auto_top_up_failed": (  # CRD-6
        {"invoice": "INV-000004", "reason": "card_declined"},
        ("card_declined", "INV-000004 was voided", "turned off"),
        "automatic top-up",
    ),
}  # fmt: skip


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_with_the_numbers_of_its_payload(kind: str) -> None:
    """NOT-1, TRI-3: each kind's own template tells what happened with the payload's
    numbers."""
    payload, texts, subject_words = EXAMPLES[kind]
    email = render_email(
        kind, payload, organization="acme", platform="Acme Voice", happened_at=AT, currency="USD"
    )
    assert template_name(kind) == f"{kind}.txt"
    assert subject_words in email.subject
    assert "\n" not in email.subject
    for text in texts:
        assert text in email.text, email.text
    assert email.text.startswith("Hello,\n\n")
    assert "billing admin of acme on Acme Voice" in email.text
    assert f"Notice {kind} of 2026-01-08 00:00 UTC." in email.text
    assert "\n\n\n" not in email.text and email.text.endswith(".\n")


@pytest.mark.parametrize("kind", [*KINDS, "usage.minutes_50", "something.new"])
def test_every_kind_renders_without_a_payload(kind: str) -> None:
    """NOT-1: payload fields are optional; an empty payload still gives a clear e-mail."""
    email = render_email(kind, {}, organization="acme", platform="Acme")
    assert "acme" in email.subject
    assert "{" not in email.text and "None" not in email.text
    assert "Notice" not in email.text  # no time given


@pytest.mark.parametrize(
    ("kind", "payload", "subject", "texts"),
    [
        ("usage.minutes_50", {"used": "250", "included": "500"}, "50% of its included minutes",
         ("250 of the 500 minutes", "Nothing to do yet")),
        ("usage.minutes_80", {"used": "400", "included": "500", "unit": "voice minutes"},
         "80% of its included minutes", ("400 of the 500 voice minutes", "consider a bigger")),
        ("usage.minutes_100", {"used": "520", "included": "500", "overage": True},
         "100%", ("billed as overage",)),
        ("usage.sessions_100", {"used": 50, "included": 50, "overage": False},
         "100% of its included sessions", ("no overage", "refused")),
        ("usage.interactions_100", {}, "interactions", ("where the plan has an overage price",)),
    ],
)  # fmt: skip
def test_usage_kinds_share_one_template(
    kind: str, payload: dict[str, Any], subject: str, texts: tuple[str, ...]
) -> None:
    """USE-7, NOT-1: usage.<meter>_50|80|100 use one template that names the meter and
    the threshold, and says what happens at 100%."""
    email = render_email(kind, payload, organization="acme", platform="Acme")
    assert template_name(kind) == "usage.txt"
    assert subject in email.subject
    for text in texts:
        assert text in email.text


def test_unknown_kinds_get_the_generic_email_with_every_field() -> None:
    """NOT-1: a kind without a template of its own is told all the same."""
    email = render_email(
        "agents.archived", {"count": 3, "agents": ["a1", "a2"]}, organization="acme", platform="P"
    )
    assert template_name("agents.archived") == "_generic.txt"
    assert email.subject == "acme: billing notice (agents.archived)"
    assert "- agents: ['a1', 'a2']\n- count: 3\n" in email.text


def test_a_payload_the_template_cannot_use_falls_back_to_the_generic_email() -> None:
    """NOT-1: numbers that are not numbers do not stop the notice from being told."""
    email = render_email(
        "phone_numbers.released", {"numbers": 5}, organization="acme", platform="P"
    )
    assert email.subject == "acme: billing notice (phone_numbers.released)"
    assert "- numbers: 5" in email.text


def test_subjects_never_carry_a_line_break() -> None:
    """A payload with line breaks cannot add e-mail headers through the subject."""
    email = render_email(
        "demo.requested", {"plan": "gold\nBcc: x@evil.test"}, organization="acme", platform="P"
    )
    assert email.subject == "Request received: gold Bcc: x@evil.test plan for acme"


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (4900, "USD", "49.00 USD"),
        (-1500, "USD", "-15.00 USD"),
        (500, "JPY", "500 JPY"),
        (1250, "KWD", "1.250 KWD"),
        (4900, None, "4900 (in the currency's smallest unit)"),
        (4900, "XYZ", "4900 (in the currency's smallest unit)"),
        ("49.00", "USD", "49.00"),
        (True, "USD", "True"),
    ],
)
def test_money_filter(minor: object, currency: object, shown: str) -> None:
    assert money(minor, currency) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-01-15T10:30:00Z", "2026-01-15 10:30 UTC"),
        ("2026-01-15T10:30:00+02:00", "2026-01-15 08:30 UTC"),
        ("next week", "next week"),
        (AT, "2026-01-08 00:00 UTC"),
        (datetime(2026, 1, 8), "2026-01-08 00:00:00"),
        (7, "7"),
    ],
)
def test_instant_filter(value: object, shown: str) -> None:
    assert instant(value) == shown


@given(
    st.dictionaries(
        st.sampled_from(["used", "included", "plan", "invoice", "numbers", "amount_minor"]),
        st.one_of(st.integers(), st.text(max_size=20), st.none(), st.lists(st.integers())),
    ),
    st.sampled_from([*KINDS, "usage.minutes_80", "other.kind"]),
)
def test_any_payload_renders(payload: dict[str, Any], kind: str) -> None:
    """Property: whatever the payload holds, every kind renders a one-line subject and a
    text (falling back to the generic e-mail when it must)."""
    email = render_email(kind, payload, organization="acme", platform="P")
    assert email.subject and "\n" not in email.subject and "\r" not in email.subject
    assert email.text.startswith("Hello,")
