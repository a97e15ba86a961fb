"""Connected channels through the services, on SQLite and PostgreSQL (CAT-7, SUB-2,
SUB-6): concurrent connects never exceed `limits.channels`, also when a sub-account
connects at the same time as its organization; the same channel connected at once by
many is connected once; refusals change nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine

from tabkeeper.db.engine import transaction
from tabkeeper.db.tables import Platform
from tabkeeper.db.tables_channels import ConnectedChannel
from tabkeeper.domain.errors import Refused
from tabkeeper.services.catalog import import_catalog
from tabkeeper.services.channels import connect_channel, disconnect_channel
from tabkeeper.services.organizations import create_organization, organization_by_code
from tests.integration.conftest import CATALOG as WORLD_CATALOG
from tests.integration.conftest import World, all_at_once, make_world

CHANNELS = [f"c{i}" for i in range(12)]
CATALOG: dict[str, Any] = {
    **WORLD_CATALOG,
    "plans": {
        **WORLD_CATALOG["plans"],
        "hub": {"name": "Hub", "price": "20.00", "rank": 3, "channels": CHANNELS,
                "limits": {"channels": 3}},
    },
}  # fmt: skip


@pytest.fixture
def world(engine: Engine) -> World:
    """acme (and its sub-account acme-eu) on Hub: 12 channels listed, 3 at once."""
    world = make_world(engine)
    with transaction(engine) as session:
        platform = session.get(Platform, world.platform_id)
        assert platform is not None
        import_catalog(session, platform, CATALOG, world.clock.now())
    world.organization("acme", {"alice": "owner"})
    with world.billing() as b:
        create_organization(b, "acme-eu", {"erin": "owner"}, parent="acme")
    world.subscribe("acme", "hub")
    return world


def _connect(world: World, org: str, channel: str) -> bool:
    try:
        with world.billing() as b:
            connect_channel(b, organization_by_code(b, org), channel)
    except Refused as refusal:
        assert refusal.code in ("channel_limit_reached", "channel_connected")
        return False
    return True


def test_cat7_concurrent_connects_never_exceed_the_limit(world: World) -> None:
    """CAT-7, SUB-2: one channel connected, then 10 connects at once (half of them by the
    sub-account, which shares the limit): exactly 2 are admitted, 3 connected in all."""
    assert _connect(world, "acme", "c0")
    admitted: list[bool] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        result = _connect(world, "acme" if index % 2 else "acme-eu", CHANNELS[index + 1])
        with lock:
            admitted.append(result)

    all_at_once(10, work)
    assert admitted.count(True) == 2
    assert world.count(ConnectedChannel, ConnectedChannel.status == "active") == 3


def test_cat7_the_same_channel_at_once_is_connected_once(world: World) -> None:
    """CAT-7: 8 connects of one channel at once: one connects it, 7 are refused."""
    results: list[bool] = []
    lock = threading.Lock()

    def work(_: int) -> None:
        result = _connect(world, "acme", "c5")
        with lock:
            results.append(result)

    all_at_once(8, work)
    assert results.count(True) == 1
    assert world.count(ConnectedChannel) == 1


def test_cat7_a_disconnect_frees_a_place_and_a_reconnect_reuses_the_row(world: World) -> None:
    """SUB-6: disconnecting frees the place; connecting it again makes the same row active."""
    for channel in ("c0", "c1", "c2"):
        assert _connect(world, "acme", channel)
    assert not _connect(world, "acme", "c3")
    with world.billing() as b:
        disconnect_channel(b, organization_by_code(b, "acme"), "c1")
    assert _connect(world, "acme", "c3")
    with world.billing() as b:
        disconnect_channel(b, organization_by_code(b, "acme"), "c3")
    assert _connect(world, "acme", "c3")
    assert world.count(ConnectedChannel) == 4
    assert world.count(ConnectedChannel, ConnectedChannel.status == "active") == 3
