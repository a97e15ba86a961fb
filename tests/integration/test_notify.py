"""Notices go out by e-mail and signed webhook from the outbox, once per destination
(NOT-1), with retries, listing and replay (NOT-2); trial reminders reach owners and
billing admins only (TRI-3, ACL-1). Real receivers on 127.0.0.1 (notify_servers.py)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from tabkeeper.cli import app
from tabkeeper.clock import SystemClock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Member, Notice, Organization
from tabkeeper.db.tables_notify import Delivery
from tabkeeper.domain.errors import InvalidInput, NotFound, Refused
from tabkeeper.notify.dispatcher import Dispatcher, next_attempt_at
from tabkeeper.notify.email import SmtpMailer
from tabkeeper.notify.endpoints import (
    create_endpoint,
    delete_endpoint,
    disable_endpoint,
    enable_endpoint,
    list_deliveries,
    list_endpoints,
    replay_delivery,
)
from tabkeeper.settings import Settings
from tests.integration.conftest import JAN_1, Crash, World, make_world
from tests.integration.notify_servers import (
    Mailbox,
    Receiver,
    free_port,
    self_signed,
    smtp_server,
    webhook_receiver,
)

TRIAL = {"trial": {"days": 14, "sessions": 50, "plan": "trial"}}
PEOPLE = {"alice": "owner", "bob": "billing_admin", "carol": "member"}
EMAILS = {"alice": "alice@acme.test", "bob": "bob@acme.test", "carol": "carol@acme.test"}
NO_EMAIL = Settings(smtp_host=None)


@pytest.fixture
def trial_world(engine: Engine) -> World:
    world = make_world(engine, TRIAL)
    world.organization("acme", PEOPLE)
    set_emails(world, "acme", EMAILS)
    return world


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, Settings]]:
    with smtp_server() as (mailbox, port):
        yield mailbox, Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from="b@acme.test")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


def set_emails(world: World, organization: str, emails: dict[str, str]) -> None:
    with transaction(world.engine) as session:
        org_id = session.scalar(
            select(Organization.id).where(
                Organization.platform_id == world.platform_id, Organization.code == organization
            )
        )
        for code, address in emails.items():
            session.execute(
                update(Member)
                .where(Member.organization_id == org_id, Member.code == code)
                .values(email=address)
            )


def dispatcher(world: World, settings: Settings = NO_EMAIL, **options: Any) -> Dispatcher:
    """The dispatcher on the world's simulated clock, signing with the real time (the
    receiver checks webhook-timestamp against its own clock)."""
    return Dispatcher(world.engine, world.clock, settings, wall_clock=SystemClock(), **options)


def endpoint(world: World, receiver: Receiver, kinds: list[str] | None = None) -> int:
    with transaction(world.engine) as session:
        info, secret = create_endpoint(
            session, world.platform_id, receiver.url, kinds, world.clock.now()
        )
    receiver.secret = secret
    return info.id


def deliveries(world: World) -> list[Delivery]:
    with transaction(world.engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def notice_kinds(world: World) -> list[str]:
    with transaction(world.engine) as session:
        return list(session.scalars(select(Notice.kind).order_by(Notice.id)))


# ---------------------------------------------------------------- e-mail
def test_trial_reminders_are_emailed_once_to_owners_and_billing_admins(
    trial_world: World, smtp: tuple[Mailbox, Settings]
) -> None:
    """TRI-3, NOT-1, ACL-1: a 14-day trial run to its end by the billing clock, the
    dispatcher ticking along: trial.days_7, trial.days_2 and trial.ended reach the owner
    and the billing admin exactly once each, the plain member nothing; more ticks send
    nothing more."""
    mailbox, settings = smtp
    world = trial_world
    for day in (3, 8, 8, 13, 15, 15, 16):
        world.worker().run_until(JAN_1 + timedelta(days=day))
        dispatcher(world, settings).tick()
    kinds = ("trial.days_7", "trial.days_2", "trial.ended")
    assert notice_kinds(world) == list(kinds)
    expected = {(f"{who}@acme.test", kind) for who in ("alice", "bob") for kind in kinds}
    assert Counter(mailbox.received()) == Counter(expected)  # each exactly once
    assert not any(to.startswith("carol") for to, _ in mailbox.received())
    assert {d.status for d in deliveries(world)} == {"delivered"}
    assert dispatcher(world, settings).tick() == 0
    assert len(mailbox.messages) == 6


def test_an_email_says_what_happened_and_carries_the_deliverys_message_id(
    trial_world: World, smtp: tuple[Mailbox, Settings]
) -> None:
    """NOT-1: the Message-ID header is the delivery's message_id (a resend carries the
    same); the subject and text come from the kind's template."""
    mailbox, settings = smtp
    trial_world.worker().run_until(JAN_1 + timedelta(days=15))
    dispatcher(trial_world, settings).tick()
    by_id = {d.message_id: d for d in deliveries(trial_world)}
    ended = [m for m in mailbox.messages if m["X-Tabkeeper-Notice"] == "trial.ended"]
    assert len(ended) == 2
    for message in ended:
        assert message["Message-ID"] in by_id
        assert by_id[message["Message-ID"]].destination == message["To"]
        assert message["Subject"] == "The free trial of acme has ended"
        assert message["From"] == "b@acme.test"
        assert message["Message-ID"].endswith("@acme.test>")
        assert "choose a plan" in message.get_content()


def test_no_email_deliveries_while_email_is_off(trial_world: World) -> None:
    """NOT-1: without an SMTP host, notices make no e-mail deliveries (and no errors)."""
    trial_world.worker().run_until(JAN_1 + timedelta(days=15))
    assert dispatcher(trial_world, NO_EMAIL).tick() == 0
    assert deliveries(trial_world) == []
    with transaction(trial_world.engine) as session:
        assert session.scalars(select(Notice.fanned_out_at)).all().count(None) == 0


def test_removed_members_and_missing_or_repeated_addresses_get_nothing(
    engine: Engine, smtp: tuple[Mailbox, Settings]
) -> None:
    """ACL-1: a removed billing admin, an owner whose address is no address and a
    billing admin whose address repeats another's in other case get no (second) e-mail."""
    mailbox, settings = smtp
    world = make_world(engine, TRIAL)
    people = {"ann": "owner", "ben": "owner", "cat": "billing_admin", "dan": "billing_admin"}
    world.organization("acme", people)
    emails = {"ann": "ann@x.test", "ben": "ben", "cat": "Ann@X.test", "dan": "dan@x.test"}
    set_emails(world, "acme", emails)
    with transaction(engine) as session:
        session.execute(update(Member).where(Member.code == "dan").values(removed_at=JAN_1))
    world.worker().run_until(JAN_1 + timedelta(days=8))
    dispatcher(world, settings).tick()
    assert mailbox.received() == [("ann@x.test", "trial.days_7")]


def test_a_refused_recipient_is_a_failed_try_with_the_servers_answer(
    trial_world: World, smtp: tuple[Mailbox, Settings]
) -> None:
    """NOT-2: an SMTP 550 is recorded (code and text) and tried again later."""
    mailbox, settings = smtp
    mailbox.refuse.add("bob@acme.test")
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    assert dispatcher(trial_world, settings).tick() == 2
    [bob] = [d for d in deliveries(trial_world) if d.destination == "bob@acme.test"]
    assert (bob.status, bob.attempts, bob.last_status_code) == ("pending", 1, 550)
    assert bob.last_error is not None and "no such mailbox" in bob.last_error
    assert bob.next_attempt_at == trial_world.clock.now() + timedelta(seconds=30)
    mailbox.refuse.clear()
    trial_world.clock.advance(timedelta(seconds=30))
    assert dispatcher(trial_world, settings).tick() == 1
    assert Counter(to for to, _ in mailbox.received()) == {"alice@acme.test": 1, "bob@acme.test": 1}


def test_an_invoice_email_shows_its_amount_in_the_invoices_currency(
    engine: Engine, smtp: tuple[Mailbox, Settings]
) -> None:
    """NOT-1: invoice.issued tells the number and the total, in the invoice's currency."""
    mailbox, settings = smtp
    world = make_world(engine)
    world.organization("acme", {"alice": "owner", "bob": "billing_admin"})  # Basic: 2 seats
    set_emails(world, "acme", EMAILS)
    world.subscribe("acme")
    dispatcher(world, settings).tick()
    issued = [m for m in mailbox.messages if m["X-Tabkeeper-Notice"] == "invoice.issued"]
    assert [m["To"] for m in issued] == ["alice@acme.test", "bob@acme.test"]
    assert issued[0]["Subject"] == "New invoice INV-000001 for acme"
    assert "the total is 30.00 USD" in issued[0].get_content()


def test_an_email_delivery_is_replayed_with_its_message_id(
    trial_world: World, smtp: tuple[Mailbox, Settings]
) -> None:
    """NOT-2: a replayed e-mail goes out again with the same Message-ID."""
    mailbox, settings = smtp
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    dispatcher(trial_world, settings).tick()
    first = deliveries(trial_world)[0]
    with transaction(trial_world.engine) as session:
        replay_delivery(session, trial_world.platform_id, first.id, trial_world.clock.now())
    assert dispatcher(trial_world, settings).tick() == 1
    assert [m["Message-ID"] for m in mailbox.messages].count(first.message_id) == 2


LOGIN = {"smtp_username": "billing", "smtp_password": "s3cret"}


@pytest.mark.parametrize(
    ("server", "security", "options", "trusted", "error"),
    [
        ("starttls+login", "starttls", LOGIN, True, None),
        ("tls", "tls", {}, True, None),
        ("tls", "tls", {}, False, "CERTIFICATE_VERIFY_FAILED"),
        ("starttls+login", "starttls", {**LOGIN, "smtp_password": "guess"}, True, "SMTP 535"),
        ("plain", "starttls", {}, True, "STARTTLS extension not supported"),
        ("closed", "none", {}, True, "ConnectionRefusedError"),
    ],
    ids=["starttls-login", "tls", "untrusted-cert", "wrong-password", "no-starttls", "closed"],
)
def test_smtp_security_modes(
    trial_world: World,
    tmp_path: Path,
    server: str,
    security: str,
    options: dict[str, str],
    trusted: bool,
    error: str | None,
) -> None:
    """NOT-1: STARTTLS with a login and TLS from the start deliver; an untrusted
    certificate, a wrong password, a server without STARTTLS and a closed port are failed
    tries with the reason on record."""
    server_tls, client_tls = self_signed(tmp_path)
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    servers: dict[str, dict[str, Any]] = {
        "starttls+login": {"starttls": server_tls, "login": ("billing", "s3cret")},
        "tls": {"tls": server_tls},
        "plain": {},
        "closed": {},
    }
    with smtp_server(**servers[server]) as (mailbox, port):
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=free_port() if server == "closed" else port,
            smtp_security=security,
            **options,
        )
        mailer = SmtpMailer(settings, ssl_context=client_tls if trusted else None)
        assert dispatcher(trial_world, settings, mailer=mailer).tick() == 2
    rows = deliveries(trial_world)
    if error is None:
        assert len(mailbox.messages) == 2
        assert {d.status for d in rows} == {"delivered"}
    else:
        assert mailbox.messages == []
        assert {(d.status, d.attempts) for d in rows} == {("pending", 1)}
        assert error in (rows[0].last_error or ""), rows[0].last_error


# ---------------------------------------------------------------- webhooks
def test_webhooks_are_signed_and_each_notice_posted_once(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-1: every notice reaches the endpoint once, signed per Standard Webhooks (the
    receiver verifies each with standardwebhooks), with the kind, time and payload."""
    endpoint(trial_world, receiver)
    for day in (8, 13, 15):
        trial_world.worker().run_until(JAN_1 + timedelta(days=day))
        dispatcher(trial_world).tick()
    assert dispatcher(trial_world).tick() == 0
    assert len(receiver.posts) == 3
    assert all(post.verified for post in receiver.posts)
    assert len(set(receiver.ids())) == 3
    documents = [post.document() for post in receiver.posts]
    assert [d["type"] for d in documents] == ["trial.days_7", "trial.days_2", "trial.ended"]
    assert documents[0]["timestamp"] == "2026-01-08T00:00:00Z"
    # the notice's fields, beside the object it is about (INT-2, test_webhook_payloads.py)
    assert {key: value for key, value in documents[2]["data"].items() if key != "object"} == {
        "organization": "acme",
        "plan": "trial",
        "subscription": 1,
    }
    assert documents[2]["data"]["object"]["id"] == 1


def test_endpoints_get_only_the_kinds_they_asked_for(trial_world: World) -> None:
    """NOT-1: an endpoint with kinds gets only those; a disabled one gets nothing."""
    with webhook_receiver() as trials, webhook_receiver() as ended, webhook_receiver() as off:
        endpoint(trial_world, trials, ["trial.*"])
        endpoint(trial_world, ended, ["trial.ended", "invoice.paid"])
        with transaction(trial_world.engine) as session:
            disable_endpoint(session, trial_world.platform_id, endpoint(trial_world, off))
        trial_world.worker().run_until(JAN_1 + timedelta(days=15))
        dispatcher(trial_world).tick()
        assert len(trials.posts) == 3
        assert [p.document()["type"] for p in ended.posts] == ["trial.ended"]
        assert off.posts == []


def test_a_failing_receiver_gets_the_delivery_on_the_third_try(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-2: 500, 500, then 204: tried again after 30 s and after 60 s more, with the
    same webhook-id each time; 3 attempts on record."""
    endpoint(trial_world, receiver)
    receiver.script = [500, 500]
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    assert dispatcher(trial_world).tick() == 1
    assert dispatcher(trial_world).tick() == 0  # not due yet
    trial_world.clock.advance(timedelta(seconds=30))
    assert dispatcher(trial_world).tick() == 1
    trial_world.clock.advance(timedelta(seconds=59))
    assert dispatcher(trial_world).tick() == 0
    trial_world.clock.advance(timedelta(seconds=1))
    assert dispatcher(trial_world).tick() == 1
    [delivery] = deliveries(trial_world)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 204)
    assert delivery.delivered_at == trial_world.clock.now()
    assert receiver.ids() == [delivery.message_id] * 3
    assert all(post.verified for post in receiver.posts)


def test_a_receiver_that_never_answers_well_is_given_up_after_three_days(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-2: exponential backoff, and status failed once the next try would be more than
    3 days after the delivery was made."""
    endpoint(trial_world, receiver)
    receiver.default = 503
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    created = trial_world.clock.now()
    tries, moment = 0, created
    while True:
        tries += 1
        following = next_attempt_at(tries, moment, created)
        if following is None:
            break
        moment = following
    while True:
        dispatcher(trial_world).tick()
        [delivery] = deliveries(trial_world)
        if delivery.status != "pending":
            break
        trial_world.clock.set(delivery.next_attempt_at)
    assert (delivery.status, delivery.attempts) == ("failed", tries)
    assert len(receiver.posts) == tries > 10
    assert delivery.last_attempt_at is not None
    assert delivery.last_attempt_at <= created + timedelta(days=3)
    assert len(set(receiver.ids())) == 1


def test_a_crash_between_sending_and_recording_sends_again_once_with_the_same_id(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-1: the dispatcher dies after the receiver answered and before the outcome was
    recorded. Within the lease nobody takes it; after it, it is sent once more with the
    same webhook-id (the receiver can drop it), and then never again."""
    endpoint(trial_world, receiver)
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))

    def crash(name: str) -> None:
        if name == "sent":
            raise Crash(name)

    with pytest.raises(Crash):
        dispatcher(trial_world, checkpoint=crash).tick()
    [delivery] = deliveries(trial_world)
    assert delivery.status == "sending"
    assert dispatcher(trial_world).tick() == 0
    trial_world.clock.advance(timedelta(minutes=5))
    assert dispatcher(trial_world).tick() == 1
    trial_world.clock.advance(timedelta(days=1))
    assert dispatcher(trial_world).tick() == 0
    assert receiver.ids() == [delivery.message_id] * 2
    [delivery] = deliveries(trial_world)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_an_outcome_that_comes_after_a_takeover_is_dropped(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-1: a slow dispatcher whose lease ran out while it was sending does not
    overwrite what the dispatcher that took the delivery over recorded."""
    endpoint(trial_world, receiver)
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))

    def take_over(name: str) -> None:
        if name == "sent":
            trial_world.clock.advance(timedelta(minutes=6))
            receiver.script = [500]
            assert dispatcher(trial_world).tick() == 1  # the other one, failing

    assert dispatcher(trial_world, checkpoint=take_over).tick() == 1
    [delivery] = deliveries(trial_world)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)


def test_fan_out_twice_makes_each_delivery_once(trial_world: World, receiver: Receiver) -> None:
    """NOT-1: a notice fanned out again (a crash after its rows committed and before it
    was marked; here: its mark cleared) makes no second delivery."""
    endpoint(trial_world, receiver)
    trial_world.worker().run_until(JAN_1 + timedelta(days=15))
    assert dispatcher(trial_world).fan_out_all() == 3
    with transaction(trial_world.engine) as session:
        session.execute(update(Notice).values(fanned_out_at=None))
    assert dispatcher(trial_world).fan_out_all() == 3
    assert len(deliveries(trial_world)) == 3
    dispatcher(trial_world).tick()
    assert len(receiver.posts) == 3


def test_two_dispatchers_at_once_send_each_delivery_once(
    engine: Engine, receiver: Receiver
) -> None:
    """NOT-1: two dispatchers running at the same time never send the same delivery."""
    world = make_world(engine, TRIAL)
    endpoint(world, receiver)
    for number in range(6):
        world.organization(f"org{number}")
    world.worker().run_until(JAN_1 + timedelta(days=15))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            dispatcher(world).tick()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(receiver.ids()) == len(set(receiver.ids())) == 18


def test_a_disabled_endpoints_waiting_delivery_is_given_up(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-2: deliveries that wait for an endpoint disabled meanwhile are marked failed
    when they come due, and are not sent."""
    endpoint_id = endpoint(trial_world, receiver)
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    dispatcher(trial_world).fan_out_all()
    with transaction(trial_world.engine) as session:
        disable_endpoint(session, trial_world.platform_id, endpoint_id)
    assert dispatcher(trial_world).tick() == 1
    [delivery] = deliveries(trial_world)
    assert (delivery.status, delivery.last_error) == ("failed", "the webhook endpoint is disabled")
    assert receiver.posts == []


# ---------------------------------------------------------------- listing and replay
def test_deliveries_are_listed_a_page_at_a_time_and_replayed(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-2: list deliveries by pages (and by endpoint, notice, status); replay a
    delivered one: sent again with its webhook-id."""
    endpoint_id = endpoint(trial_world, receiver)
    trial_world.worker().run_until(JAN_1 + timedelta(days=15))
    dispatcher(trial_world).tick()
    platform = trial_world.platform_id
    with transaction(trial_world.engine) as session:
        first = list_deliveries(session, platform, limit=2)
        second = list_deliveries(session, platform, limit=2, after_id=first.next_after_id)
        by_endpoint = list_deliveries(session, platform, endpoint_id=endpoint_id)
        delivered = list_deliveries(session, platform, status="delivered")
        pending = list_deliveries(session, platform, status="pending")
        one = list_deliveries(session, platform, notice_id=first.deliveries[0].notice_id)
    assert [d.kind for d in first.deliveries] == ["trial.days_7", "trial.days_2"]
    assert [d.kind for d in second.deliveries] == ["trial.ended"]
    assert second.next_after_id is None
    assert len(by_endpoint.deliveries) == len(delivered.deliveries) == 3
    assert pending.deliveries == ()
    assert [d.id for d in one.deliveries] == [first.deliveries[0].id]
    target = second.deliveries[0]
    trial_world.clock.advance(timedelta(hours=1))
    with transaction(trial_world.engine) as session:
        replayed = replay_delivery(session, platform, target.id, trial_world.clock.now())
    assert (replayed.status, replayed.next_attempt_at) == ("pending", trial_world.clock.now())
    assert dispatcher(trial_world).tick() == 1
    assert receiver.ids()[-1] == target.message_id
    assert receiver.ids().count(target.message_id) == 2
    [after] = [d for d in deliveries(trial_world) if d.id == target.id]
    assert (after.status, after.attempts) == ("delivered", 2)


def test_endpoints_are_listed_without_their_secret_enabled_and_deleted(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-1: the secret is shown once, at creation; deleting an endpoint deletes its
    deliveries."""
    endpoint_id = endpoint(trial_world, receiver)
    assert receiver.secret.startswith("whsec_")
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    dispatcher(trial_world).tick()
    platform = trial_world.platform_id
    with transaction(trial_world.engine) as session:
        disable_endpoint(session, platform, endpoint_id)
        enabled = enable_endpoint(session, platform, endpoint_id)
        [listed] = list_endpoints(session, platform)
    assert listed == enabled
    assert (listed.url, listed.kinds, listed.enabled) == (receiver.url, None, True)
    assert not hasattr(listed, "secret")
    with transaction(trial_world.engine) as session:
        delete_endpoint(session, platform, endpoint_id)
    with transaction(trial_world.engine) as session:
        assert list_endpoints(session, platform) == []
    assert deliveries(trial_world) == []


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.test/x", "scheme must be http or https"),
        ("javascript:alert(1)", "scheme must be http or https"),
        ("https://user:secret@hooks.test/x", "credentials"),
        ("https://user@hooks.test/x", "credentials"),
        ("http:///x", "no host"),
        ("https://hooks.test:99999/x", "port"),
        ("https://hooks.test/a b", "spaces"),
        ("https://hooks.test/x#part", "fragment"),
        ("https://hooks.test/" + "x" * 2000, "longer than"),
        ("", "expected an http or https URL"),
        (42, "expected an http or https URL"),
    ],
)
def test_bad_endpoint_urls_are_refused(world: World, url: object, message: str) -> None:
    """Bad inputs tried: other schemes, credentials in the URL, no host, a bad port,
    spaces, a fragment, too long, empty, not text. Nothing is made."""
    with transaction(world.engine) as session, pytest.raises(InvalidInput) as refused:
        create_endpoint(session, world.platform_id, url, None, world.clock.now())
    assert message in refused.value.message
    assert refused.value.code == "invalid_url"
    with transaction(world.engine) as session:
        assert list_endpoints(session, world.platform_id) == []


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        (["invoice.payed"], "kinds[0]: unknown notice kind 'invoice.payed'"),
        (["trial.ended", "usage.minutes_70"], "kinds[1]"),
        (["nothing.*"], "kinds[0]"),
        ([], "at least one"),
        ("invoice.paid", "expected a list"),
    ],
)
def test_unknown_kind_filters_are_refused(world: World, kinds: object, message: str) -> None:
    """Bad inputs tried: a misspelt kind, a usage threshold that does not exist, an
    unknown group, an empty list, a bare string."""
    with transaction(world.engine) as session, pytest.raises(InvalidInput) as refused:
        create_endpoint(session, world.platform_id, "https://hooks.test/x", kinds, JAN_1)  # type: ignore[arg-type]
    assert message in refused.value.message


def test_another_platforms_ids_are_unknown(engine: Engine, receiver: Receiver) -> None:
    """ACL-3, NOT-2: a platform cannot replay, list, disable or delete what belongs to
    another: its ids are answered as not found; and bad list arguments are refused."""
    world = make_world(engine, TRIAL)
    world.organization("acme")
    endpoint_id = endpoint(world, receiver)
    world.worker().run_until(JAN_1 + timedelta(days=8))
    dispatcher(world).tick()
    [delivery] = deliveries(world)
    other = world.platform_id + 1000
    attempts: list[Any] = [
        lambda s: replay_delivery(s, other, delivery.id, JAN_1),
        lambda s: list_deliveries(s, other, endpoint_id=endpoint_id),
        lambda s: list_deliveries(s, other, notice_id=delivery.notice_id),
        lambda s: disable_endpoint(s, other, endpoint_id),
        lambda s: delete_endpoint(s, other, endpoint_id),
        lambda s: replay_delivery(s, world.platform_id, delivery.id + 99, JAN_1),
    ]
    for attempt in attempts:
        with transaction(engine) as session, pytest.raises(NotFound):
            attempt(session)
    for bad in ({"status": "sent"}, {"limit": 0}, {"limit": 101}, {"limit": True}):
        with transaction(engine) as session, pytest.raises(InvalidInput):
            list_deliveries(session, world.platform_id, **bad)
    with transaction(engine) as session:
        assert list_deliveries(session, other).deliveries == ()
    [unchanged] = deliveries(world)
    assert (unchanged.status, unchanged.attempts) == ("delivered", 1)


def test_replay_is_refused_while_sending_or_for_a_disabled_endpoint(
    trial_world: World, receiver: Receiver
) -> None:
    """NOT-2: a delivery being sent cannot be replayed; nor one whose endpoint is off."""
    endpoint_id = endpoint(trial_world, receiver)
    trial_world.worker().run_until(JAN_1 + timedelta(days=8))
    platform = trial_world.platform_id

    def replay_now(name: str) -> None:
        if name == "claimed":
            with transaction(trial_world.engine) as session, pytest.raises(Refused) as refused:
                replay_delivery(session, platform, delivery_id, JAN_1)
            assert refused.value.code == "delivery_in_flight"

    dispatcher(trial_world).fan_out_all()
    [waiting] = deliveries(trial_world)
    delivery_id = waiting.id
    dispatcher(trial_world, checkpoint=replay_now).tick()
    with transaction(trial_world.engine) as session:
        disable_endpoint(session, platform, endpoint_id)
    with transaction(trial_world.engine) as session, pytest.raises(Refused) as refused:
        replay_delivery(session, platform, delivery_id, trial_world.clock.now())
    assert refused.value.code == "endpoint_disabled"


# ---------------------------------------------------------------- the command line
def test_tick_command_sends_the_notices_of_the_work_it_did(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NOT-1, TRI-3: `tabkeeper tick` runs the dispatcher after the billing clock; a
    second tick for the same moment sends nothing more."""
    world = make_world(engine, TRIAL)
    world.organization("acme", PEOPLE)
    set_emails(world, "acme", EMAILS)
    with smtp_server() as (mailbox, port):
        monkeypatch.setenv("TABKEEPER_DATABASE_URL", database_url)
        monkeypatch.setenv("TABKEEPER_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("TABKEEPER_SMTP_PORT", str(port))
        runner = CliRunner()
        result = runner.invoke(app, ["tick", "--now", "2026-01-08T00:00:00Z"])
        assert result.exit_code == 0, result.output
        assert "handled 2 notice deliveries" in result.output
        again = runner.invoke(app, ["tick", "--now", "2026-01-08T00:00:00Z"])
        assert "handled 0 notice deliveries" in again.output
    assert sorted(mailbox.received()) == [
        ("alice@acme.test", "trial.days_7"),
        ("bob@acme.test", "trial.days_7"),
    ]
