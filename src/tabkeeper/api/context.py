"""What every request needs: the engine, the clock, the payment provider, the caller.

Routes open their transaction themselves (`api.billing(caller)`), commit when the block
ends, and never hold a transaction while they call the payment provider (DESIGN.md: the
entry point opens the transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from tabkeeper.clock import Clock
from tabkeeper.db.engine import read_transaction, transaction
from tabkeeper.payments.provider import PaymentProvider
from tabkeeper.services.access import Caller, authenticate
from tabkeeper.services.context import Billing, CatalogStore, billing, billing_for
from tabkeeper.settings import Settings

bearer = HTTPBearer(
    auto_error=False,
    description="A platform API key (tk_...) or a member's portal session (ps_...).",
)


@dataclass
class Api:
    settings: Settings
    engine: Engine
    clock: Clock
    provider: PaymentProvider
    store: CatalogStore

    def billing(self, caller: Caller) -> AbstractContextManager[Billing]:
        """A transaction of the caller's platform, committed when the block ends."""
        return billing(self.engine, caller.platform_id, self.clock.now(), self.store)

    @contextmanager
    def reading(self, caller: Caller) -> Iterator[Billing]:
        """A read-only transaction of the caller's platform (never waits for a writer on
        SQLite): for answers that change nothing, such as the check."""
        with read_transaction(self.engine) as session:
            yield billing_for(session, caller.platform_id, self.clock.now(), self.store)


def get_api(request: Request) -> Api:
    api = request.app.state.api
    assert isinstance(api, Api)
    return api


def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """Who calls: 401 (problem+json) without a valid API key or portal session."""
    api = get_api(request)
    header = None if credentials is None else f"Bearer {credentials.credentials}"
    with transaction(api.engine) as session:
        caller = authenticate(session, header, api.clock.now())
    request.state.caller = caller
    return caller


ApiDep = Annotated[Api, Depends(get_api)]
CallerDep = Annotated[Caller, Depends(get_caller)]
