"""`tabkeeper simulate FILE`: a scenario (SCENARIOS.md) run on a fresh in-memory database
with a simulated clock, through the same services and billing clock as the server.

Before each step the clock advances to the step's time, creating organizations and doing
all due work on the way, in time order; then the step runs. A refused step is reported in
`refusals` and the run goes on. The result is JSON with sorted keys, the same bytes on
every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Engine, select

from tabkeeper.clock import SimulatedClock
from tabkeeper.db.engine import make_engine, transaction
from tabkeeper.db.schema import METADATA
from tabkeeper.db.tables import DemoRequest, Invoice, Organization
from tabkeeper.domain.billing_details import BillingDetails
from tabkeeper.domain.corrections import CreditRequest
from tabkeeper.domain.decisions import Decision
from tabkeeper.domain.errors import InvalidInput, NotFound, Refused, TabkeeperError
from tabkeeper.domain.holds import DEFAULT_TIMEOUT_SECONDS
from tabkeeper.domain.utc import format_instant
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.payments.sandbox import SandboxProvider
from tabkeeper.services import (
    addons,
    auto_top_ups,
    changes,
    channels,
    credit_alerts,
    credit_holds,
    credit_purchases,
    discounts,
    organizations,
    spend_caps,
    subscriptions,
)
from tabkeeper.services.access import Caller
from tabkeeper.services.assignments import assign_plan
from tabkeeper.services.catalog import ensure_platform, import_catalog
from tabkeeper.services.checkout import subscribe_with_card
from tabkeeper.services.collections import collect_invoices, owed, pay_now
from tabkeeper.services.context import Billing, CatalogStore, billing
from tabkeeper.services.corrections import (
    grant_account_credit,
    invoice_id_by_number,
    mark_paid_out_of_band,
    void_invoice,
    write_off,
)
from tabkeeper.services.credit_notes import credit_invoice
from tabkeeper.services.invoices import open_invoices
from tabkeeper.services.limits import check
from tabkeeper.services.payment_methods import (
    clear_payment_methods,
    default_payment_method,
    save_payment_method,
)
from tabkeeper.services.payments import collect, customer_of
from tabkeeper.services.session_starts import (
    reset_session_limit,
    set_session_limit,
    start_session,
)
from tabkeeper.services.usage import ingest
from tabkeeper.simulation.report import report
from tabkeeper.simulation.scenario import (
    AddMember,
    AddPhoneNumber,
    AddSlots,
    ApproveChange,
    ArchiveAgent,
    AssignPlan,
    Cancel,
    CancelScheduledChange,
    ChangePlan,
    Check,
    CreateAgent,
    Events,
    OrganizationSpec,
    Pay,
    PaymentMethodChoice,
    PayNow,
    ReleasePhoneNumber,
    RemoveMember,
    RemoveSlots,
    RequestDemo,
    ResetSessionLimit,
    Resume,
    Scenario,
    SetPaymentMethod,
    SetSessionLimit,
    StartSession,
    Subscribe,
    TimelineStep,
    TopUp,
    build_scenario,
)
from tabkeeper.simulation.steps import (
    ApplyCoupon,
    ConnectChannel,
    DisableAutoTopUp,
    DisconnectChannel,
    GrantAccountCredit,
    HoldCredits,
    IssueCreditNote,
    MarkPaid,
    MarkUncollectible,
    ReleaseHold,
    ResetSpendCap,
    SetAutoTopUp,
    SetBillingDetails,
    SetCreditAlert,
    SetSpendCap,
    SettleHold,
    VoidInvoice,
)
from tabkeeper.worker.clock import BillingClock

Result = dict[str, Any]
ProviderFactory = Callable[[Engine, SimulatedClock], PaymentProvider]
"""Makes a run's payment provider from its engine and clock (PAY-4)."""


class Simulation:
    """One run of one scenario."""

    def __init__(self, data: Mapping[str, Any], provider: ProviderFactory | None = None) -> None:
        self.scenario: Scenario = build_scenario(data)
        self.engine = make_engine("sqlite://")
        METADATA.create_all(self.engine)
        self.clock = SimulatedClock(self.scenario.start())
        # PAY-4: another provider (tests: Stripe on a fake Stripe); the sandbox by default
        self.provider = (provider or SandboxProvider)(self.engine, self.clock)
        self.store = CatalogStore()
        self.worker = BillingClock(self.engine, self.provider, self.clock, store=self.store)
        with transaction(self.engine) as session:
            platform = ensure_platform(
                session,
                "simulation",
                "Simulation",
                self.clock.now(),
                dict(data.get("settings") or {}),
            )
            import_catalog(session, platform, data["catalog"], self.clock.now())
            self.platform_id = platform.id
        self.waiting = sorted(
            self.scenario.organizations.values(), key=lambda spec: spec.created_at
        )
        self.cards = {
            code: spec.payment_method for code, spec in self.scenario.organizations.items()
        }
        self.checks: list[Result] = []
        self.refusals: list[Result] = []
        self.demo_requests: list[Result] = []
        self.holds: dict[tuple[str, str], int] = {}
        """CRD-5: the ids of the holds by (organization, the scenario's name)."""

    # -- time -------------------------------------------------------------------------
    def advance(self, until: datetime) -> None:
        """Create organizations and do due work up to `until`, in time order."""
        while True:
            due_at = self.worker.next_due_at(until)
            spec = self.waiting[0] if self.waiting and self.waiting[0].created_at <= until else None
            if spec is not None and (due_at is None or spec.created_at <= due_at):
                self.waiting.pop(0)
                self._move_to(spec.created_at)
                self._create(spec)
            elif due_at is not None:
                self.worker.run_until(due_at)
            else:
                break
        self._move_to(until)

    def _move_to(self, moment: datetime) -> None:
        if moment > self.clock.now():
            self.clock.set(moment)

    def _create(self, spec: OrganizationSpec) -> None:
        try:
            with self._billing() as b:
                organizations.create_organization(
                    b,
                    spec.code,
                    {member: role.value for member, role in spec.members.items()},
                    parent=spec.parent,
                )
                if spec.billing_details is not None:  # INV-7
                    organization = organizations.organization_by_code(b, spec.code)
                    discounts.save_billing_details(b, organization, spec.billing_details)
        except TabkeeperError as error:
            self.refusals.append(
                {"at": self._now(), "step": None, "org": spec.code, "code": error.code,
                 "message": error.message}
            )  # fmt: skip

    # -- steps ------------------------------------------------------------------------
    def run(self) -> Result:
        for step in self.scenario.timeline:
            self.advance(step.at)
            try:
                self._do(step)
            except TabkeeperError as error:
                self._refuse(step, error.code, error.message)
        self.advance(self.scenario.until)
        return self.result()

    def _refuse(self, step: TimelineStep, code: str, message: str) -> None:
        org = getattr(step, "org", None)
        self.refusals.append(
            {"at": self._now(), "step": step.index, "org": org, "code": code, "message": message}
        )

    def _do(self, step: TimelineStep) -> None:
        handler = self._HANDLERS.get(type(step))
        if handler is None:
            raise Refused(
                f"the step {step.do!r} is not supported yet by this version of tabkeeper",
                code="not_supported",
            )
        handler(self, step)

    def _subscribe(self, step: Subscribe) -> None:
        with self._billing() as b:
            self._org(b, step.org)
        card = self.cards[step.org]
        redemption = None
        if step.coupon is not None:  # INV-6: redeemed first, withdrawn if the subscribe fails
            with self._billing() as b:
                redemption = discounts.redeem_coupon(
                    b, self._org(b, step.org), step.coupon, member=step.actor, plan=step.plan
                ).id
        try:
            subscribe_with_card(
                self._billing, self.provider, step.org, step.plan,
                None if card is PaymentMethodChoice.NONE else card.value, step.addons,
                step.anchor,
            )  # fmt: skip
        except TabkeeperError:
            if redemption is not None:
                with self._billing() as b:
                    discounts.withdraw_redemption(b, redemption)
            raise

    def _set_payment_method(self, step: SetPaymentMethod) -> None:
        with self._billing() as b:
            customer = customer_of(self._org(b, step.org))
        if step.method is PaymentMethodChoice.NONE:
            with self._billing() as b:
                clear_payment_methods(b, self._org(b, step.org))
            self.cards[step.org] = step.method
            return
        card = self.provider.attach(customer, step.method.value)
        with self._billing() as b:
            organization_id = save_payment_method(b, self._org(b, step.org), card).organization_id
            invoice_ids = owed(b, organization_id)
        self.cards[step.org] = step.method
        collect_invoices(self._billing, self.provider, organization_id, invoice_ids)  # SUB-12

    def _pay(self, step: Pay) -> None:
        with self._billing() as b:
            owner = subscriptions.billing_organization(b, self._org(b, step.org))
            invoice_ids = [invoice.id for invoice in open_invoices(b, owner.id)]
        if not invoice_ids:
            raise Refused("There is nothing to pay.", code="nothing_to_pay")
        failed = []
        for invoice_id in invoice_ids:
            result = collect(self._billing, self.provider, invoice_id)
            if result is not None and not result.succeeded:
                failed.append(result.failure_message or "declined")
        if failed:
            raise Refused(f"The payment failed: {failed[0]}", code="payment_failed")

    def _pay_now(self, step: PayNow) -> None:
        """SUB-12, as the API's pay_now: a decline stops the collection and is refused."""
        with self._billing() as b:
            self._org(b, step.org)
        done = pay_now(self._billing, self.provider, Caller(self.platform_id), step.org)
        if done.failed is not None:
            (number,) = done.named([done.failed])
            raise Refused(
                f"Invoice {number} was not paid: {done.failure_message}", code="payment_failed"
            )

    def _events(self, step: Events) -> None:
        with self._billing() as b:
            known = {
                row.code: row
                for row in b.session.scalars(
                    select(Organization).where(Organization.platform_id == self.platform_id)
                )
            }
            _, catalog = b.current_catalog()
            outcome = ingest(b, list(step.events), catalog, known, default_time=step.at)
        for _index, reason in outcome.refused:
            self._refuse(step, "event_refused", reason)

    def _check(self, step: Check) -> None:
        with self._billing() as b:
            decision = check(
                b, self._org(b, step.org), step.action, step.feature, channel=step.channel
            )
        self._answered(step, step.action.value, step.feature, decision)
        if step.channel is not None:  # CAT-7: only connect_channel checks name one
            self.checks[-1]["channel"] = step.channel

    def _start_session(self, step: StartSession) -> None:
        """LIM-3: check and count in one; a refusal is the check's answer, not an error."""
        with self._billing() as b:
            organization = self._org(b, step.org)
            decision = start_session(b, organization, step.agent, step.conversation)
        self._answered(step, "start_session", None, decision)

    def _answered(
        self, step: Check | StartSession, action: str, feature: str | None, decision: Decision
    ) -> None:
        self.checks.append(
            {
                "at": self._now(),
                "org": step.org,
                "action": action,
                "feature": feature,
                "allowed": decision.allowed,
                "reason": decision.reason.value,
                "message": decision.message,
            }
        )

    def _request_demo(self, step: RequestDemo) -> None:
        with self._billing() as b:
            message = subscriptions.request_demo(b, self._org(b, step.org), step.plan, step.actor)
        self.demo_requests.append(
            {"at": self._now(), "org": step.org, "plan": step.plan, "message": message}
        )

    def _assign_plan(self, step: AssignPlan) -> None:
        """CAT-9, by the platform. With `collection: card` and no card saved yet, the
        organization's `payment_method` (a sandbox card) is put on file first, as a
        checkout would; with `payment_method: none` there is none to charge."""
        with self._billing() as b:
            found = self._org(b, step.org)
            has_card = default_payment_method(b, found.id) is not None
            customer = customer_of(found)
        card = self.cards[step.org]
        if step.collection == "card" and not has_card and card is not PaymentMethodChoice.NONE:
            attached = self.provider.attach(customer, card.value)
            with self._billing() as b:
                save_payment_method(b, self._org(b, step.org), attached)
        assign_plan(
            self._billing, self.provider, Caller(self.platform_id), step.org, step.plan,
            step.price, step.collection,
        )  # fmt: skip

    def _in_transaction(self, step: Any, action: Callable[[Billing, Organization], object]) -> None:
        with self._billing() as b:
            action(b, self._org(b, step.org))

    # -- corrections (INV-5), done by the platform ------------------------------------
    def _invoice_id(
        self, b: Billing, step: VoidInvoice | MarkUncollectible | MarkPaid | IssueCreditNote
    ) -> int:
        """The id of the invoice numbered `step.invoice` of the step's organization (its
        billing organization's); NotFound for another organization's."""
        invoice_id = invoice_id_by_number(b, step.invoice)
        owner = subscriptions.billing_organization(b, self._org(b, step.org))
        invoice = b.session.get(Invoice, invoice_id)
        if invoice is None or invoice.organization_id != owner.id:
            raise NotFound(f"No such invoice {step.invoice!r}.", code="unknown_invoice")
        return invoice_id

    def _correct(self, step: Any, action: Callable[[Billing, int], object]) -> None:
        with self._billing() as b:
            action(b, self._invoice_id(b, step))

    def _credit_note(self, step: IssueCreditNote) -> None:
        with self._billing() as b:
            invoice_id = self._invoice_id(b, step)
        request = CreditRequest(
            amount_minor=None if step.amount is None else step.amount.minor,
            lines=None
            if step.lines is None
            else tuple((line, amount.minor) for line, amount in step.lines),
            refund=step.refund,
        )
        credit_invoice(self._billing, self.provider, invoice_id, request)

    _HANDLERS: ClassVar[dict[type, Callable[[Simulation, Any], None]]] = {}

    # -- plumbing ---------------------------------------------------------------------
    def _billing(self) -> AbstractContextManager[Billing]:
        """One transaction of the platform as of the clock's time (a UnitOfWork)."""
        return billing(self.engine, self.platform_id, self.clock.now(), self.store)

    def _org(self, b: Billing, code: str | None) -> Organization:
        if code is None:
            raise InvalidInput("this step needs an organization")
        try:
            return organizations.organization_by_code(b, code)
        except InvalidInput:
            raise Refused(
                f"The organization {code!r} does not exist yet.", code="unknown_organization"
            ) from None

    def _now(self) -> str:
        return format_instant(self.clock.now())

    def result(self) -> Result:
        with transaction(self.engine) as session:
            found = report(session, self.platform_id, self.scenario, self.store, self.clock.now())
            # CAT-9: each request as it stands now (pending, or handled by an assignment)
            handled = session.execute(
                select(DemoRequest.status, DemoRequest.handled_at)
                .join(Organization, Organization.id == DemoRequest.organization_id)
                .where(Organization.platform_id == self.platform_id)
                .order_by(DemoRequest.id)
            ).all()
        for request, (status, handled_at) in zip(self.demo_requests, handled, strict=True):
            request["status"] = status
            request["handled_at"] = None if handled_at is None else format_instant(handled_at)
        found["checks"] = self.checks
        found["refusals"] = self.refusals
        found["demo_requests"] = self.demo_requests
        return found


def _simple(
    action: Callable[[Billing, Organization, Any], object],
) -> Callable[[Simulation, Any], None]:
    def run(simulation: Simulation, step: Any) -> None:
        simulation._in_transaction(step, lambda b, org: action(b, org, step))

    return run


Simulation._HANDLERS.update(
    {
        Subscribe: Simulation._subscribe,
        SetPaymentMethod: Simulation._set_payment_method,
        Pay: Simulation._pay,
        PayNow: Simulation._pay_now,
        Events: Simulation._events,
        Check: Simulation._check,
        StartSession: Simulation._start_session,
        SetSessionLimit: _simple(lambda b, org, s: set_session_limit(b, org, s.limit)),
        ResetSessionLimit: _simple(lambda b, org, s: reset_session_limit(b, org)),
        RequestDemo: Simulation._request_demo,
        AssignPlan: Simulation._assign_plan,
        ChangePlan: _simple(lambda b, org, s: changes.change_plan(b, org, s.plan, s.when, s.actor)),
        CancelScheduledChange: _simple(lambda b, org, s: changes.cancel_scheduled_change(b, org)),
        ApproveChange: _simple(lambda b, org, s: changes.approve_change(b, org)),
        Cancel: _simple(lambda b, org, s: subscriptions.cancel(b, org)),
        Resume: _simple(lambda b, org, s: subscriptions.resume(b, org)),
        CreateAgent: _simple(lambda b, org, s: organizations.create_agent(b, org, s.agent)),
        ArchiveAgent: _simple(lambda b, org, s: organizations.archive_agent(b, org, s.agent)),
        AddMember: _simple(
            lambda b, org, s: organizations.add_member(b, org, s.member, s.role.value)
        ),
        RemoveMember: _simple(lambda b, org, s: organizations.remove_member(b, org, s.member)),
        AddPhoneNumber: _simple(lambda b, org, s: organizations.add_phone_number(b, org, s.number)),
        ReleasePhoneNumber: _simple(
            lambda b, org, s: organizations.release_phone_number(b, org, s.number)
        ),
        AddSlots: _simple(lambda b, org, s: addons.add_slots(b, org, s.addon, s.quantity, s.actor)),
        RemoveSlots: _simple(
            lambda b, org, s: addons.remove_slots(b, org, s.addon, s.quantity, s.actor)
        ),
        TopUp: _simple(
            lambda b, org, s: credit_purchases.top_up(b, org, s.credits, s.price, s.actor)
        ),
    }
)
Simulation._HANDLERS.update(
    {
        VoidInvoice: lambda sim, s: sim._correct(s, void_invoice),
        MarkUncollectible: lambda sim, s: sim._correct(s, write_off),
        MarkPaid: lambda sim, s: sim._correct(s, mark_paid_out_of_band),
        IssueCreditNote: Simulation._credit_note,
        GrantAccountCredit: _simple(
            lambda b, org, s: grant_account_credit(b, org, s.amount.minor, s.reason)
        ),
    }
)
Simulation._HANDLERS.update(  # CAT-7
    {
        ConnectChannel: _simple(lambda b, org, s: channels.connect_channel(b, org, s.channel)),
        DisconnectChannel: _simple(
            lambda b, org, s: channels.disconnect_channel(b, org, s.channel)
        ),
    }
)


# -- credit holds (CRD-5) and the low-balance alert (CRD-7) ---------------------------------
def _hold_credits(simulation: Simulation, step: HoldCredits) -> None:
    name = (step.org, step.hold)
    if name in simulation.holds:
        raise Refused(f"A hold named {step.hold!r} was made already.", code="hold_exists")
    timeout = DEFAULT_TIMEOUT_SECONDS if step.timeout_seconds is None else step.timeout_seconds
    with simulation._billing() as b:
        made = credit_holds.hold(b, simulation._org(b, step.org), step.feature, step.credits,
                                 agent=step.agent, timeout=timeout)  # fmt: skip
    simulation.holds[name] = made.id


def _hold_id(simulation: Simulation, step: SettleHold | ReleaseHold) -> int:
    found = simulation.holds.get((step.org, step.hold))
    if found is None:
        raise NotFound(f"No such hold {step.hold!r}.", code="unknown_hold")
    return found


def _settle_hold(simulation: Simulation, step: SettleHold) -> None:
    with simulation._billing() as b:
        organization = credit_holds.billing_organization(b, simulation._org(b, step.org))
        credit_holds.settle(b, _hold_id(simulation, step), step.credits, organization)


def _release_hold(simulation: Simulation, step: ReleaseHold) -> None:
    with simulation._billing() as b:
        organization = credit_holds.billing_organization(b, simulation._org(b, step.org))
        credit_holds.release(b, _hold_id(simulation, step), organization)


Simulation._HANDLERS.update(
    {
        HoldCredits: _hold_credits,
        SettleHold: _settle_hold,
        ReleaseHold: _release_hold,
        SetCreditAlert: _simple(
            lambda b, org, s: credit_alerts.set_low_alert(b, org, s.threshold, s.actor)
        ),
    }
)


Simulation._HANDLERS.update(  # INV-6, INV-7
    {
        ApplyCoupon: _simple(
            lambda b, org, s: discounts.redeem_coupon(b, org, s.coupon, member=s.actor)
        ),
        SetBillingDetails: _simple(
            lambda b, org, s: discounts.save_billing_details(
                b,
                org,
                BillingDetails.read(s.legal_name, s.country, s.tax_id, s.address),
                s.actor,
            )
        ),
    }
)


def simulate(data: Mapping[str, Any], provider: ProviderFactory | None = None) -> Result:
    """Run the scenario `data` (already loaded from YAML or JSON) and return its results;
    `provider` makes the payment provider of the run (the sandbox by default)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a scenario file must be a mapping (settings, catalog, ...)")
    return Simulation(data, provider).run()


def render(result: Result) -> str:
    """The results as JSON: sorted keys, two-space indent, a final newline."""
    return json.dumps(result, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# -- the spend cap (LIM-6) and auto top-up (CRD-6) ------------------------------------------
Simulation._HANDLERS.update(
    {
        SetSpendCap: _simple(
            lambda b, org, s: spend_caps.set_spend_cap(b, org, s.amount.major_str(), s.actor)
        ),
        ResetSpendCap: _simple(lambda b, org, s: spend_caps.reset_spend_cap(b, org, s.actor)),
        SetAutoTopUp: _simple(
            lambda b, org, s: auto_top_ups.set_auto_top_up(b, org, s.threshold, s.credits, s.actor)
        ),
        DisableAutoTopUp: _simple(
            lambda b, org, s: auto_top_ups.disable_auto_top_up(b, org, s.actor)
        ),
    }
)
