"""Many uses of AI credits in one transaction (SPEC CRD-1, CRD-3): `consume_batch`.

Each use is accepted or refused on its own, with the answer `consume_by_code` would give
it if the uses were taken one after the other in the batch's order: a refused use (an
unknown organization, an unknown feature, a bad quantity, the check's refusal, too
little left) changes nothing and the others are kept. A use id taken before, or earlier
in the same batch, takes nothing and answers as the first (`duplicate`).

The uses of one billing organization share one gate: the balance row's `UPDATE … WHERE
balance >= total … RETURNING` for all of them (which locks the row), then, under the
lock, one read of the ids taken before (their debit is put back), one grant `UPDATE`
when the first grant in draw order covers all of them (else domain/ledger.py's
`allocate` use after use, one `UPDATE` per grant) and one multi-row `INSERT` of the
entries, each with the balance after it. This is exact: when the total passes the gate,
taking the uses one by one would have taken every one of them, from the same grants.
When it does not (too little for all of them, or something due), the organization's
uses are taken one by one (services/credits.py `take`), each in a savepoint of its own
so that a refused one leaves nothing behind. Organizations are locked in the order of
their ids, so two batches never wait for each other in a circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tabkeeper.db import credit_store as store
from tabkeeper.domain.errors import InvalidInput, NotFound, TabkeeperError
from tabkeeper.domain.ledger import (
    MAX_BATCH_USES,
    MAX_USES,
    Draw,
    Grant,
    allocate,
    cheapest_use,
    crossed_into_exhaustion,
    use_cost,
    whole_credits,
)
from tabkeeper.services.auto_fire import after_change
from tabkeeper.services.context import Billing
from tabkeeper.services.credit_alerts import tell_low
from tabkeeper.services.credit_ledger import Account, accounts_by_code, as_grant, grant_rows
from tabkeeper.services.credits import (
    Used,
    earlier_uses,
    gate,
    put_back,
    require_allowed,
    take,
    tell_exhausted,
    use_entry,
)

__all__ = ["Outcome", "Use", "consume_batch"]


@dataclass(frozen=True, slots=True)
class Use:
    """One use of a batch: `uses` uses of `feature` by the platform's organization
    `organization` (a code), under the client's id `use_id`."""

    organization: str
    feature: str
    use_id: str
    uses: object = 1
    agent: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one use: `used` (taken now, or before: `used.duplicate`), or
    `refused` (the error it would have had alone; nothing taken)."""

    use: Use
    used: Used | None = None
    refused: TabkeeperError | None = None


@dataclass(frozen=True, slots=True)
class _Priced:
    index: int
    use: Use
    account: Account
    count: int
    cost: int

    @property
    def key(self) -> str:
        return f"use:{self.account.used_by_id}:{self.use.use_id}"


def consume_batch(b: Billing, uses: Sequence[Use], *, checked: bool = True) -> tuple[Outcome, ...]:
    """CRD-1, CRD-3: 1 to MAX_BATCH_USES uses, each taken or refused on its own (see the
    module); the outcomes in the order of `uses`. With `checked`, the real-time check's
    other rules refuse a use first, as for `consume`."""
    listed = isinstance(uses, Sequence) and not isinstance(uses, str | bytes)
    if not listed or not 1 <= len(uses) <= MAX_BATCH_USES:
        got = len(uses) if listed else repr(uses)
        raise InvalidInput(
            f"uses: expected 1 to {MAX_BATCH_USES:,} uses, got {got}", code="invalid_batch"
        )
    for use in uses:
        if not isinstance(use, Use):
            raise InvalidInput(f"uses: expected uses, got {use!r}", code="invalid_batch")
    accounts = accounts_by_code(b, {use.organization for use in uses})
    outcomes: list[Outcome] = [Outcome(use) for use in uses]
    groups: dict[int, list[_Priced]] = {}
    checks: dict[tuple[str, str, int], TabkeeperError | None] = {}
    for index, use in enumerate(uses):
        account = accounts.get(use.organization)
        try:
            if account is None:
                raise NotFound("No such organization.")
            count = whole_credits(use.uses, "quantity", MAX_USES)
            cost = use_cost(account.catalog, use.feature, count)
        except TabkeeperError as error:
            outcomes[index] = Outcome(use, refused=error)
            continue
        refused = _check(b, account, use, cost, checks) if checked else None
        if refused is not None:
            outcomes[index] = Outcome(use, refused=refused)
            continue
        groups.setdefault(account.owner_id, []).append(_Priced(index, use, account, count, cost))
    for owner_id in sorted(groups):
        group = groups[owner_id]
        for priced, outcome in zip(group, _take_group(b, group, checked), strict=True):
            outcomes[priced.index] = outcome
    return tuple(outcomes)


def _check(
    b: Billing,
    account: Account,
    use: Use,
    cost: int,
    checks: dict[tuple[str, str, int], TabkeeperError | None],
) -> TabkeeperError | None:
    """The check's refusal (`require_allowed`) of `use`, if any, asked once per
    organization, feature and cost in a batch: the answer depends on nothing else."""
    key = (use.organization, use.feature, cost)
    if key not in checks:
        try:
            require_allowed(b, account.status, account.plan, use.feature, cost)
            checks[key] = None
        except TabkeeperError as error:
            checks[key] = error
    return checks[key]


def _take_group(b: Billing, group: list[_Priced], checked: bool) -> list[Outcome]:
    """The uses of one billing organization: one gate for all of them, or one by one."""
    firsts: dict[str, _Priced] = {}
    for priced in group:
        firsts.setdefault(priced.key, priced)
    account = group[0].account
    total = sum(priced.cost for priced in firsts.values())
    gated = gate(b, account, total)
    if gated is None:
        return [_take_alone(b, priced, checked) for priced in group]
    after_all, epoch, threshold = gated.balance, gated.epoch, gated.threshold
    before = after_all + total
    answers = earlier_uses(b, account.owner_id, list(firsts))
    fresh = [priced for key, priced in firsts.items() if key not in answers]
    taken = sum(priced.cost for priced in fresh)
    if taken < total:
        put_back(b, account.owner_id, total - taken, ())
    balance = before
    entries = []
    for priced, draws in zip(fresh, _draws(b, account.owner_id, fresh), strict=True):
        balance -= priced.cost
        use = priced.use
        entries.append(use_entry(priced.account, priced.key, use.feature, priced.count,
                                 use.agent, priced.cost, balance, draws, b.now))  # fmt: skip
        answers[priced.key] = Used(use.feature, priced.count, priced.cost, balance, use.agent,
                                   b.now)  # fmt: skip
    if entries:
        written = store.insert_entries(b.session, entries)
        assert len(written) == len(entries), "entries are written under the balance lock"
    if crossed_into_exhaustion(before, balance, cheapest_use(account.catalog)):
        tell_exhausted(b, account, balance, epoch)
    if entries:
        tell_low(b, account.owner_id, before, balance, threshold, entries[-1]["entry_key"])
        if gated.auto_threshold is not None:  # CRD-6
            after_change(b, account.owner_id, balance, epoch, gated.auto_threshold,
                         gated.auto_pending)  # fmt: skip
    return [
        Outcome(priced.use, used=answers[priced.key])
        if firsts[priced.key] is priced
        else Outcome(priced.use, used=replace(answers[priced.key], duplicate=True))
        for priced in group
    ]


def _draws(b: Billing, owner_id: int, fresh: list[_Priced]) -> list[tuple[Draw, ...]]:
    """The grants that pay for each use, as if taken one after the other (under the
    lock): the first grant in draw order for all when it covers them."""
    total = sum(priced.cost for priced in fresh)
    if not total:
        return []
    first = store.draw_first(b.session, owner_id, total)
    if first is not None:
        return [(Draw(first, priced.cost),) for priced in fresh]
    grants: list[Grant] = [as_grant(row) for row in grant_rows(b, owner_id)]
    found: list[tuple[Draw, ...]] = []
    drawn: dict[int, int] = {}
    for priced in fresh:
        draws = allocate(grants, priced.cost, b.now)
        found.append(draws)
        taken = {part.grant_id: part.credits for part in draws}
        for grant_id, credits in taken.items():
            drawn[grant_id] = drawn.get(grant_id, 0) + credits
        grants = [replace(g, remaining=g.remaining - taken.get(g.id, 0)) for g in grants]
    for grant_id, credits in sorted(drawn.items()):
        assert store.draw(b.session, grant_id, credits), "a grant never goes below zero"
    return found


def _take_alone(b: Billing, priced: _Priced, checked: bool) -> Outcome:
    """One use as `consume_by_code` takes it, in a savepoint: refused, it leaves nothing."""
    use = priced.use
    try:
        with b.session.begin_nested():
            used = take(b, priced.account, use.feature, use.use_id, priced.count, use.agent,
                        checked=checked)  # fmt: skip
    except TabkeeperError as error:
        return Outcome(use, refused=error)
    return Outcome(use, used=used)
