"""The dispatcher: sends the outbox's notices, each exactly once per destination (NOT-1),
retrying webhooks and e-mail with backoff (NOT-2). It runs in the worker, beside the
billing clock, in the same house style (worker/clock.py).

A tick does two things:
1. Fan-out. Each notice not yet fanned out becomes its delivery rows
   (notify/fanout.py), in one transaction per notice, claimed with the row lock
   (PostgreSQL: FOR UPDATE SKIP LOCKED). A crash rolls that notice back; the unique
   constraint makes a rerun a no-op.
2. Sending. A due delivery (pending and `next_attempt_at` reached) is claimed (status
   `sending`, `claimed_at`) and committed; it is sent outside any transaction; the outcome
   is recorded in another transaction: delivered (`delivered_at`, the status code), or one
   more failed try (`attempts`, `last_error`, `next_attempt_at` = now + backoff), or given
   up (status `failed`) when the next try would come more than 3 days after the delivery
   was made. A delivery left `sending` by a crash is taken over once its `lease` is over
   and sent again with the same `message_id` (webhook-id, Message-ID), so the receiver can
   drop the duplicate: at most one extra send per crash. An outcome that arrives after
   its delivery was taken over (or replayed) is dropped.

Backoff: 30 s after the first failed try, doubling each time, at most 6 hours apart.

Two clocks: `clock` decides what is due and stamps the rows (a SimulatedClock in tests and
`tabkeeper tick`); `wall_clock` stamps what receivers check against their own clock (the
webhook-timestamp header, the e-mail's Date), so it should be the real time (defaults to
`clock`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, or_, select
from sqlalchemy.orm import Session

from tabkeeper.clock import Clock
from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Invoice, Notice, Organization, Platform
from tabkeeper.db.tables_notify import Delivery, WebhookEndpoint
from tabkeeper.domain.errors import InvalidInput
from tabkeeper.domain.utc import require_utc
from tabkeeper.notify.email import SmtpMailer
from tabkeeper.notify.fanout import fan_out
from tabkeeper.notify.objects import event_document
from tabkeeper.notify.parcels import EmailParcel, Outcome, Parcel, WebhookParcel
from tabkeeper.notify.templates import render_email
from tabkeeper.notify.webhooks import WebhookPoster, webhook_body
from tabkeeper.settings import Settings

Checkpoint = Callable[[str], None]

LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=6)
GIVE_UP_AFTER = timedelta(days=3)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed try: 30 s × 2^(attempts−1), at
    most 6 hours."""
    if attempts < 1:
        raise InvalidInput(f"attempts: expected a whole number >= 1, got {attempts}")
    if attempts > 20:  # 30 s × 2^19 is far past the cap already
        return LONGEST_WAIT
    return min(FIRST_RETRY * (1 << (attempts - 1)), LONGEST_WAIT)


def next_attempt_at(attempts: int, now: datetime, created_at: datetime) -> datetime | None:
    """When to try again after `attempts` failed tries; None to give up (NOT-2): the next
    try would come more than 3 days after the delivery was made."""
    moment = require_utc(now, "now") + retry_delay(attempts)
    return None if moment > require_utc(created_at, "created_at") + GIVE_UP_AFTER else moment


class Dispatcher:
    """Delivers the outbox. `checkpoint(name)` is called between the steps
    ("fanned_out" after a notice's rows commit, "claimed", "sent" after the receiver
    answered and before the outcome is recorded, "recorded"): tests raise from it to stop
    the dispatcher there, as a crash would."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        settings: Settings,
        *,
        lease: timedelta = LEASE,
        checkpoint: Checkpoint | None = None,
        wall_clock: Clock | None = None,
        mailer: SmtpMailer | None = None,
        poster: WebhookPoster | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.lease = lease
        self.checkpoint = checkpoint or (lambda _name: None)
        self.wall_clock = wall_clock or clock
        self.mailer = mailer or SmtpMailer(settings)
        self.poster = poster or WebhookPoster(settings.webhook_timeout_seconds)

    def tick(self, *, limit: int | None = None) -> int:
        """Fan out every new notice, then send what is due now (at most `limit`
        deliveries). Returns how many deliveries were sent, tried or given up."""
        self.fan_out_all()
        done = 0
        while (limit is None or done < limit) and self.send_one():
            done += 1
        return done

    def fan_out_all(self) -> int:
        """Fan out every notice not fanned out yet; the number of notices."""
        count = 0
        while True:
            with transaction(self.engine) as session:
                notice = session.scalars(
                    select(Notice)
                    .where(Notice.fanned_out_at.is_(None))
                    .order_by(Notice.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if notice is None:
                    return count
                fan_out(session, notice, self.settings, self.clock.now())
            count += 1
            self.checkpoint("fanned_out")

    def send_one(self) -> bool:
        """Claim, send and record the earliest due delivery; False when none is due."""
        now = self.clock.now()
        with transaction(self.engine) as session:
            delivery = session.scalars(
                select(Delivery)
                .where(self._due(now))
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if delivery is None:
                return False
            delivery.status, delivery.claimed_at = "sending", now
            parcel = _parcel(session, delivery)
            if isinstance(parcel, str):  # nowhere to send it: give up at once
                delivery.status, delivery.last_error = "failed", parcel
                return True
        self.checkpoint("claimed")
        outcome = self._send(parcel)
        self.checkpoint("sent")
        self._record(parcel, outcome)
        self.checkpoint("recorded")
        return True

    def _due(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
            and_(Delivery.status == "sending", Delivery.claimed_at <= now - self.lease),
        )

    def _send(self, parcel: Parcel) -> Outcome:
        now = require_utc(self.wall_clock.now(), "wall clock")
        if isinstance(parcel, EmailParcel):
            return self.mailer.send(parcel, now)
        return self.poster.send(parcel, now)

    def _record(self, parcel: Parcel, outcome: Outcome) -> None:
        now = self.clock.now()
        with transaction(self.engine) as session:
            delivery = session.get(Delivery, parcel.delivery_id, with_for_update=True)
            if (
                delivery is None
                or delivery.status != "sending"
                or delivery.claimed_at != parcel.claimed_at
            ):
                return  # taken over after the lease, or replayed: the newer claim decides
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.last_status_code = outcome.status_code
            delivery.claimed_at = None
            if outcome.delivered:
                delivery.status, delivery.delivered_at = "delivered", now
                delivery.last_error = None
                return
            delivery.last_error = outcome.error
            retry_at = next_attempt_at(delivery.attempts, now, delivery.created_at)
            if retry_at is None:
                delivery.status = "failed"
            else:
                delivery.status, delivery.next_attempt_at = "pending", retry_at


def _parcel(session: Session, delivery: Delivery) -> Parcel | str:
    """What sending `delivery` needs, or why it cannot be sent."""
    notice = session.get(Notice, delivery.notice_id)
    assert notice is not None  # deliveries go with their notice (ON DELETE CASCADE)
    organization = session.get(Organization, notice.organization_id)
    assert organization is not None
    claimed_at = delivery.claimed_at
    assert claimed_at is not None
    if delivery.channel == "email":
        platform = session.get(Platform, notice.platform_id)
        assert platform is not None
        rendered = render_email(
            notice.kind,
            notice.payload,
            organization=organization.name,
            platform=platform.name,
            happened_at=notice.created_at,
            currency=_currency(session, notice),
        )
        return EmailParcel(
            delivery_id=delivery.id,
            claimed_at=claimed_at,
            message_id=delivery.message_id,
            kind=notice.kind,
            to=delivery.destination,
            subject=rendered.subject,
            text=rendered.text,
        )
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id) if delivery.endpoint_id else None
    if endpoint is None or not endpoint.enabled:
        return "the webhook endpoint is disabled"
    return WebhookParcel(
        delivery_id=delivery.id,
        claimed_at=claimed_at,
        message_id=delivery.message_id,
        url=endpoint.url,
        secret=endpoint.secret,
        body=webhook_body(event_document(session, notice, organization.code, claimed_at)),
    )


def _currency(session: Session, notice: Notice) -> str | None:
    """The currency of the invoice a notice names, for amounts in minor units."""
    number = notice.payload.get("invoice")
    if not isinstance(number, str):
        return None
    return session.scalar(
        select(Invoice.currency).where(
            Invoice.platform_id == notice.platform_id, Invoice.number == number
        )
    )
