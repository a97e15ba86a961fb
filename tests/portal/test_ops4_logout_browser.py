"""ACL-3, OPS-4 in Debian's Chromium: the tab's "Log out" ends the session (the page
after it, and the old token, are refused), and a form sent without its CSRF token is a
403 page that changes nothing, while the same form with it works."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.billing import ACME, make_organization
from tests.portal.conftest import Portal
from tests.portal.test_journeys import Axe, accessible, enter


@pytest.fixture
def acme(portal: Portal) -> Portal:
    make_organization(portal.api, ACME)
    return portal


def test_acl3_log_out_ends_the_session(acme: Portal, page: Any, axe: Axe) -> None:
    enter(acme, page, axe)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="You have logged out").wait_for()
    accessible(page, axe)
    assert page.context.cookies() == [] or all(
        c["name"] != "tk_portal" for c in page.context.cookies()
    )
    page.goto(f"{acme.base_url}/portal/")
    assert "Your billing session has ended" in page.content()


def test_ops4_a_form_without_its_csrf_token_is_refused(acme: Portal, page: Any, axe: Axe) -> None:
    enter(acme, page, axe)
    plan = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="Basic"))
    page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.value = 'forged')"
    )
    plan.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Not available").wait_for()
    assert "not sent from the billing tab" in page.content()
    page.goto(f"{acme.base_url}/portal/")
    page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="Basic")).get_by_role(
        "button", name="Subscribe"
    ).click()
    page.wait_for_url(re.compile(r"/sandbox/checkout/"))
