"""The platform setting `billing_tab` of the billing terms (ACL-2): on by default; off
means billing is handled elsewhere and the billing tab is shown to nobody."""

from typing import Any

import pytest

from tabkeeper.domain.errors import InvalidConfig
from tabkeeper.domain.terms import BillingTerms, build_terms


def test_billing_tab_on_by_default_acl_2() -> None:
    """ACL-2: without the setting the billing tab is shown (to billing roles)."""
    assert build_terms(None).billing_tab is True
    assert build_terms({}).billing_tab is True
    assert BillingTerms().billing_tab is True


@pytest.mark.parametrize("value", [True, False])
def test_billing_tab_read_from_settings_acl_2(value: bool) -> None:
    """ACL-2: the platform turns the billing tab off (or on) with `billing_tab`."""
    assert build_terms({"billing_tab": value}).billing_tab is value


@pytest.mark.parametrize("value", ["no", 0, 1, None, "false", []])
def test_billing_tab_must_be_true_or_false(value: Any) -> None:
    """Bad input names the setting and what was given."""
    with pytest.raises(InvalidConfig) as raised:
        build_terms({"billing_tab": value})
    assert raised.value.path == "settings.billing_tab"
    assert "expected true or false" in raised.value.problem


def test_billing_tab_checked_when_built_in_code() -> None:
    """Terms built in code check the flag as terms read from a document do."""
    with pytest.raises(InvalidConfig) as raised:
        BillingTerms(billing_tab="yes")  # type: ignore[arg-type]
    assert raised.value.path == "billing_tab"
