"""Members subscribe to usage alerts (LIM-5): the notices usage.<meter>_50|80|100 reach
the owner and billing admins, and also every member who subscribed to that meter, by
e-mail through a real SMTP server on 127.0.0.1; nobody else, nothing twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables_notify import UsageAlertSubscription
from tabkeeper.domain.errors import NotFound
from tabkeeper.services.alerts import UnknownMeter, alert_meters, set_alert_meters
from tabkeeper.services.organizations import organization_by_code, remove_member
from tabkeeper.services.usage import ingest_batch
from tabkeeper.settings import Settings
from tests.integration.conftest import World, make_world
from tests.integration.notify_servers import Mailbox, smtp_server
from tests.integration.test_notify import dispatcher, set_emails

PEOPLE = {"alice": "owner", "bob": "billing_admin", "carol": "member", "dave": "member"}
EMAILS = {who: f"{who}@acme.test" for who in PEOPLE}


@pytest.fixture
def acme(engine: Engine) -> World:
    world = make_world(engine)
    world.organization("acme", PEOPLE)
    set_emails(world, "acme", EMAILS)
    world.subscribe("acme", "pro")  # 500 minutes included, room for the team
    return world


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, Settings]]:
    with smtp_server() as (mailbox, port):
        yield mailbox, Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="b@acme.test")


def subscribe(world: World, member: str, meters: list[object]) -> list[str]:
    with world.billing() as b:
        return set_alert_meters(b, organization_by_code(b, "acme"), member, meters)


def meters_of(world: World, member: str) -> list[str]:
    with world.billing() as b:
        return alert_meters(b, organization_by_code(b, "acme"), member)


def call(world: World, number: int, minutes: int) -> None:
    event = {
        "id": f"call-{number}", "type": "call.ended", "org": "acme",
        "time": (world.clock.now()).isoformat(), "properties": {"duration_seconds": minutes * 60},
    }  # fmt: skip
    with world.billing() as b:
        assert ingest_batch(b, [event]).accepted == 1


def test_a_subscribed_member_gets_the_usage_alerts_of_their_meter(
    acme: World, smtp: tuple[Mailbox, Settings]
) -> None:
    """LIM-5, NOT-1: carol (a plain member) subscribes to the minutes alerts, dave does
    not; 260 then 150 more of the 500 included minutes raise usage.minutes_50 and
    usage.minutes_80: alice and bob (billing roles) and carol get each exactly once, dave
    nothing; other notices (invoice.issued) still skip both plain members."""
    mailbox, settings = smtp
    assert subscribe(acme, "carol", ["minutes"]) == ["minutes"]
    acme.clock.advance(timedelta(days=2))
    call(acme, 1, 260)
    call(acme, 2, 150)
    for _ in range(2):
        dispatcher(acme, settings).tick()
    alerts = [(to, kind) for to, kind in mailbox.received() if kind.startswith("usage.")]
    expected = {
        (f"{who}@acme.test", kind)
        for who in ("alice", "bob", "carol")
        for kind in ("usage.minutes_50", "usage.minutes_80")
    }
    assert Counter(alerts) == Counter(expected)  # each exactly once
    assert not any(to.startswith("dave") for to, _ in mailbox.received())
    others = [to for to, kind in mailbox.received() if not kind.startswith("usage.")]
    assert others and not any(to.startswith(("carol", "dave")) for to in others)


def test_unsubscribing_and_removed_members_get_no_alerts(
    acme: World, smtp: tuple[Mailbox, Settings]
) -> None:
    """LIM-5: a member who set [] is unsubscribed; a member removed from the organization
    gets nothing although the subscription row is still there."""
    mailbox, settings = smtp
    subscribe(acme, "carol", ["minutes"])
    subscribe(acme, "dave", ["minutes", "sessions"])
    assert subscribe(acme, "carol", []) == []
    with acme.billing() as b:
        remove_member(b, organization_by_code(b, "acme"), "dave")
    acme.clock.advance(timedelta(days=1))
    call(acme, 1, 300)
    dispatcher(acme, settings).tick()
    receivers = {to for to, kind in mailbox.received() if kind == "usage.minutes_50"}
    assert receivers == {"alice@acme.test", "bob@acme.test"}


def test_setting_replaces_the_members_meters(acme: World) -> None:
    """LIM-5: the set given is the set kept; repeats are one."""
    assert subscribe(acme, "carol", ["sessions", "minutes", "minutes"]) == ["minutes", "sessions"]
    assert subscribe(acme, "carol", ["sessions"]) == ["sessions"]
    assert meters_of(acme, "carol") == ["sessions"]
    assert meters_of(acme, "dave") == []


@pytest.mark.parametrize(
    ("meters", "message"),
    [
        (["minutes", "tokens"], "meters[1]: 'tokens' is not a meter"),
        ([7], "meters[0]: 7 is not a meter"),
        ([None], "meters[0]: None is not a meter"),
    ],
)
def test_unknown_meters_are_refused_and_nothing_changes(
    acme: World, meters: list[object], message: str
) -> None:
    """LIM-5, bad inputs tried: an unknown meter code after a good one, a number, null.
    Refused naming the value; the member's earlier choice stays."""
    subscribe(acme, "carol", ["sessions"])
    with pytest.raises(UnknownMeter, match=message.replace("[", r"\[").replace("]", r"\]")):
        subscribe(acme, "carol", meters)
    assert meters_of(acme, "carol") == ["sessions"]


def test_an_unknown_member_is_not_found_and_nothing_is_stored(acme: World) -> None:
    """Bad input tried: a member code that is not in the organization."""
    with pytest.raises(NotFound, match="No member 'zed' in acme"):
        subscribe(acme, "zed", ["minutes"])
    with transaction(acme.engine) as session:
        assert session.scalar(select(func.count()).select_from(UsageAlertSubscription)) == 0
