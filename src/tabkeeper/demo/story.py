"""The demo's organizations and what happened to them, as a scenario (SCENARIOS.md) that
ends now (`tabkeeper serve --demo`; docs/demo.md).

`demo_scenario(now, with_credits)` gives the scenario document: the settings and catalog
of demo/catalog.yaml, the organizations, and a timeline of steps at times relative to
midnight UTC of `now` (`days(40)` is 40 days before it), run up to `now` itself. Built
in code rather than written in YAML because the times move with `now` and the usage
comes in batches. The organizations, one per state of the subscription card (SUB-1):

    northwind  trialing, 11 days left (TRI-1)
    bluebird   trialing, "Trial ending soon": 2 days left (TRI-3)
    harbor     active on Growth: usage, invoices, credits; an owner, a billing admin and a
               plain member (ACL-1)
    summit     active on Voice: a phone number, minutes over the included 500 billed on
               the renewal (USE-5, INV-1)
    copper     past_due: the card failed at the last renewal, the grace period runs (SUB-8)
    maple      canceled: the period ended after a cancellation (SUB-7)
    orchid     expired: the trial ran out (TRI-2)
    lumen      active on Growth with a scheduled downgrade to Starter: "Upcoming
               subscription" (SUB-4)
    atlas      active on Growth with agent and seat add-on slots (ADD-1), and a demo
               request for the sales-led Enterprise plan (CAT-2)
    birch      active on Outreach (answered only, USE-4), canceled at the period's end
    fjord      active on Starter, a German company with a VAT number: 19% VAT on its
               invoices (INV-7)
    pine       active on Growth with the Welcome coupon (20% off for 3 periods, INV-6)

`with_credits` adds credit top-ups and AI feature use (CRD-1, CRD-4) to harbor and atlas,
for when the simulator can carry top-ups out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import yaml

from tabkeeper.domain.utc import format_instant, require_utc

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DemoOrganization:
    """An organization of the demo: its code, display name and members (first: the
    owner, whose portal URL is printed)."""

    code: str
    name: str
    members: tuple[tuple[str, str], ...]
    created_days_ago: int
    payment_method: str


ORGANIZATIONS = (
    DemoOrganization("northwind", "Northwind Clinics", (("nora", "owner"),), 3, "none"),
    DemoOrganization("bluebird", "Bluebird Travel", (("bella", "owner"),), 12, "none"),
    DemoOrganization(
        "harbor",
        "Harbor Legal",
        (("hana", "owner"), ("ben", "billing_admin"), ("mia", "member")),
        75,
        "card_ok",
    ),
    DemoOrganization("summit", "Summit Realty", (("sam", "owner"),), 50, "card_ok"),
    DemoOrganization("copper", "Copper Kitchen", (("cole", "owner"),), 34, "card_ok"),
    DemoOrganization("maple", "Maple Fitness", (("max", "owner"),), 52, "card_ok"),
    DemoOrganization("orchid", "Orchid Spa", (("olga", "owner"),), 20, "none"),
    DemoOrganization("lumen", "Lumen Labs", (("leo", "owner"),), 10, "card_ok"),
    DemoOrganization("atlas", "Atlas Logistics", (("ada", "owner"),), 40, "card_ok"),
    DemoOrganization("birch", "Birch Academy", (("bo", "owner"),), 25, "card_ok"),
    DemoOrganization("fjord", "Fjord Robotik", (("frida", "owner"),), 45, "card_ok"),  # INV-7
    DemoOrganization("pine", "Pine Studio", (("pia", "owner"),), 45, "card_ok"),  # INV-6
)
BILLING_DETAILS: dict[str, Doc] = {
    "fjord": {"legal_name": "Fjord Robotik GmbH", "country": "DE", "tax_id": "DE999999999",
              "address": "Torstraße 49\n10119 Berlin"},
}  # fmt: skip
"""INV-7: organizations that gave billing details."""
NAMES = {org.code: org.name for org in ORGANIZATIONS}


def demo_catalog() -> Doc:
    """demo/catalog.yaml: `settings` and `catalog`."""
    text = resources.files("tabkeeper.demo").joinpath("catalog.yaml").read_text("utf-8")
    document: Doc = yaml.safe_load(text)
    return document


class _Timeline:
    """Steps at times before `base` (midnight UTC of now)."""

    def __init__(self, base: datetime) -> None:
        self.base = base
        self.steps: list[Doc] = []

    def at(self, days_ago: int, hours: int = 0) -> str:
        return format_instant(self.base - timedelta(days=days_ago) + timedelta(hours=hours))

    def do(self, days_ago: int, do: str, org: str, hours: int = 0, **fields: Any) -> None:
        self.steps.append({"at": self.at(days_ago, hours), "do": do, "org": org, **fields})

    def conversations(
        self, days_ago: int, org: str, count: int, *, replied: int | None = None, agent: str = "a1"
    ) -> None:
        """`count` conversations of `agent`, each an agent message and (for the first
        `replied` of them; all by default) an end user's answer (USE-3, USE-4)."""
        answered = count if replied is None else replied
        stamp = f"{org}-{days_ago}"
        events: list[Doc] = []
        for n in range(count):
            conversation = f"{stamp}-c{n}"
            events.append(_message(f"{conversation}-out", org, agent, conversation, "outbound"))
            if n < answered:
                events.append(_message(f"{conversation}-in", org, agent, conversation, "inbound"))
        self.steps.append({"at": self.at(days_ago, 10), "do": "events", "events": events})

    def calls(self, days_ago: int, org: str, minutes: list[int], agent: str = "a1") -> None:
        """Voice calls that ended, each `minutes` long (USE-5)."""
        events = [
            {"id": f"{org}-{days_ago}-call{n}", "type": "call.ended", "org": org,
             "agent": agent, "properties": {"duration_seconds": 60 * length - 20}}
            for n, length in enumerate(minutes)
        ]  # fmt: skip
        self.steps.append({"at": self.at(days_ago, 11), "do": "events", "events": events})

    def ai_use(self, days_ago: int, org: str, uses: dict[str, int], agent: str = "a1") -> None:
        """AI features used (CRD-1): credits spent per feature, `uses` feature -> times."""
        events = [
            {"id": f"{org}-{days_ago}-ai-{feature}", "type": "ai.used", "org": org,
             "agent": agent, "properties": {"feature": feature, "quantity": quantity}}
            for feature, quantity in uses.items()
        ]  # fmt: skip
        self.steps.append({"at": self.at(days_ago, 12), "do": "events", "events": events})


def _message(event_id: str, org: str, agent: str, conversation: str, direction: str) -> Doc:
    return {
        "id": event_id, "type": "message", "org": org, "agent": agent,
        "conversation": conversation, "properties": {"direction": direction},
    }  # fmt: skip


def demo_scenario(now: datetime, with_credits: bool = False) -> Doc:
    """The whole demo as a scenario document whose clock runs to `now`."""
    now = require_utc(now, "now")
    base = now.replace(hour=0, minute=0, second=0, microsecond=0)
    t = _Timeline(base)

    t.do(3, "create_agent", "northwind", agent="a1")
    t.conversations(2, "northwind", 8)
    t.conversations(1, "northwind", 4)

    t.do(12, "create_agent", "bluebird", agent="a1")
    t.conversations(10, "bluebird", 9)
    t.conversations(4, "bluebird", 12)

    t.do(74, "subscribe", "harbor", plan="growth")
    for agent in ("a1", "a2"):
        t.do(74, "create_agent", "harbor", agent=agent)
    t.do(74, "add_phone_number", "harbor", number="+1 555 0100")
    for days_ago, count in ((60, 30), (40, 25), (20, 40), (5, 18), (1, 12)):
        t.conversations(days_ago, "harbor", count)
    t.conversations(3, "harbor", 10, agent="a2")
    t.do(2, "set_session_limit", "harbor", limit=1500)
    if with_credits:
        t.do(20, "top_up", "harbor", credits=5000)
        t.ai_use(19, "harbor", {"smart_reply": 240, "kb_answer": 90})
        t.ai_use(3, "harbor", {"smart_reply": 180, "kb_answer": 60}, agent="a2")

    t.do(49, "subscribe", "summit", plan="voice")
    t.do(49, "create_agent", "summit", agent="a1")
    t.do(49, "add_phone_number", "summit", number="+1 555 0142")
    t.calls(40, "summit", [95, 120, 88])
    t.calls(30, "summit", [140, 75, 64, 30])
    t.calls(6, "summit", [45, 60, 32])

    t.do(33, "subscribe", "copper", plan="starter")
    t.do(33, "create_agent", "copper", agent="a1")
    t.conversations(20, "copper", 15)
    t.do(10, "set_payment_method", "copper", method="card_fails_later")

    t.do(50, "subscribe", "maple", plan="starter")
    t.conversations(45, "maple", 12)
    t.do(30, "cancel", "maple")

    t.conversations(18, "orchid", 6)

    t.do(9, "subscribe", "lumen", plan="growth")
    t.do(9, "create_agent", "lumen", agent="a1")
    t.conversations(4, "lumen", 20)
    t.do(1, "change_plan", "lumen", plan="starter", when="period_end")

    t.do(39, "subscribe", "atlas", plan="growth")
    t.do(20, "add_slots", "atlas", addon="extra_agent", quantity=2)
    t.do(20, "add_slots", "atlas", addon="extra_seat", quantity=3)
    for agent in ("a1", "a2", "a3", "a4", "a5"):
        t.do(20, "create_agent", "atlas", agent=agent)
    t.conversations(15, "atlas", 35, agent="a4")
    t.do(2, "request_demo", "atlas", plan="enterprise")
    if with_credits:
        t.do(15, "top_up", "atlas", credits=2000)
        t.ai_use(14, "atlas", {"kb_answer": 400}, agent="a4")

    t.do(24, "subscribe", "birch", plan="outreach")
    t.do(24, "create_agent", "birch", agent="a1")
    t.conversations(14, "birch", 40, replied=15)
    t.do(1, "cancel", "birch")

    t.do(44, "subscribe", "fjord", plan="starter")  # INV-7: taxed by its billing details
    t.do(44, "create_agent", "fjord", agent="a1")
    t.conversations(30, "fjord", 20)
    t.do(44, "subscribe", "pine", plan="growth", coupon="welcome20")  # INV-6
    t.do(44, "create_agent", "pine", agent="a1")
    t.conversations(25, "pine", 30)

    document = demo_catalog()
    document["organizations"] = {
        org.code: {
            "created_at": t.at(org.created_days_ago),
            "payment_method": org.payment_method,
            "members": dict(org.members),
        }
        for org in ORGANIZATIONS
    }
    for code, details in BILLING_DETAILS.items():
        document["organizations"][code]["billing_details"] = dict(details)
    document["timeline"] = sorted(t.steps, key=lambda step: str(step["at"]))
    document["until"] = format_instant(now)
    return document
