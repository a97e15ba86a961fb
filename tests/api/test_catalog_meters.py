"""Publishing a catalog through POST /v1/catalog, on SQLite and PostgreSQL: a meter that
would add up or take the maximum of an event's `agent` or `conversation` (texts) is
refused with the path of its field, and nothing is published (CAT-3)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.api.billing import problem
from tests.api.conftest import ApiWorld
from tests.integration.conftest import CATALOG


@pytest.mark.parametrize(
    ("kind", "field"),
    [("sum", "agent"), ("sum", "conversation"), ("max", "agent"), ("max", "conversation")],
)
def test_cat3_a_sum_or_max_of_agent_or_conversation_is_not_published(
    api: ApiWorld, kind: str, field: str
) -> None:
    """CAT-3: the platform posts a catalog whose meter `talk` is a `kind` of the event's
    `field`: 400 invalid_config naming meters.talk.field, and the current catalog stays
    the version it was; the same meter as a unique_count is published."""
    before = api.platform.get("/v1/catalog").json()
    document: dict[str, Any] = copy.deepcopy(CATALOG)
    document["meters"]["talk"] = {"kind": kind, "event": "message", "field": field}
    refused = problem(
        api.platform.post("/v1/catalog", {"catalog": document}), 400, "invalid_config"
    )
    assert refused["detail"] == (
        f"catalog.meters.talk.field: a {kind} meter needs a number, and {field!r} is the"
        f" event's {field} (a text); count its distinct values with unique_count"
    )
    assert api.platform.get("/v1/catalog").json() == before
    document["meters"]["talk"]["kind"] = "unique_count"
    published = api.platform.post("/v1/catalog", {"catalog": document})
    assert published.status_code == 201, published.text
    assert published.json()["version"] == before["version"] + 1
