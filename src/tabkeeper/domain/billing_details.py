"""Billing details of an organization (SPEC INV-7): legal name, address, country, tax ID.

What is printed on its invoices and decides its taxes (domain/taxes.py). Checked when
made, so bad details never reach storage:
- `legal_name`: 1 to 200 characters (trimmed);
- `address`: up to 500 characters, lines kept (may be empty);
- `country`: an ISO 3166-1 alpha-2 code ("DE"), upper case; lower case is accepted and
  upper-cased;
- `tax_id` (optional): spaces, dots and hyphens are dropped and letters upper-cased; for an
  organization in an EU member state it must be that state's VAT number by pattern (its
  prefix, EL for Greece, then the state's digits; no check digit, no VIES lookup); for
  other countries 2 to 32 letters and digits.

The country codes are ISO 3166-1's 249 (tests/unit/test_billing_details.py checks them
against Babel's CLDR territories).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tabkeeper.domain.errors import InvalidInput

COUNTRIES: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)
"""ISO 3166-1 alpha-2 country codes."""

EU_VAT_PATTERNS: dict[str, str] = {
    "AT": r"ATU\d{8}",
    "BE": r"BE[01]\d{9}",
    "BG": r"BG\d{9,10}",
    "CY": r"CY\d{8}[A-Z]",
    "CZ": r"CZ\d{8,10}",
    "DE": r"DE\d{9}",
    "DK": r"DK\d{8}",
    "EE": r"EE\d{9}",
    "GR": r"EL\d{9}",
    "ES": r"ES[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"FI\d{8}",
    "FR": r"FR[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"HR\d{11}",
    "HU": r"HU\d{8}",
    "IE": r"IE\d[A-Z0-9+*]\d{5}[A-W][A-I]?",
    "IT": r"IT\d{11}",
    "LT": r"LT(\d{9}|\d{12})",
    "LU": r"LU\d{8}",
    "LV": r"LV\d{11}",
    "MT": r"MT\d{8}",
    "NL": r"NL\d{9}B\d{2}",
    "PL": r"PL\d{10}",
    "PT": r"PT\d{9}",
    "RO": r"RO\d{2,10}",
    "SE": r"SE\d{12}",
    "SI": r"SI\d{8}",
    "SK": r"SK\d{10}",
}
"""The VAT number of each EU member state, by the state's ISO code, as a full pattern."""

_OTHER_TAX_ID = re.compile(r"[A-Z0-9]{2,32}")
_DROPPED = re.compile(r"[\s.\-]")
LEGAL_NAME_MAX = 200
ADDRESS_MAX = 500


def country_code(value: object, what: str = "country") -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased; InvalidInput (`invalid_country`) otherwise."""
    code = value.strip().upper() if isinstance(value, str) else None
    if code is None or code not in COUNTRIES:
        raise InvalidInput(
            f"{what}: {value!r} is not an ISO 3166-1 alpha-2 country code such as DE or US",
            code="invalid_country",
        )
    return code


def tax_id_for(country: str, value: object) -> str | None:
    """The tax ID `value` as stored (normalized), checked for `country`; None for none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"tax_id: expected a text, got {value!r}", code="invalid_tax_id")
    normalized = _DROPPED.sub("", value).upper()
    if not normalized:
        return None
    pattern = EU_VAT_PATTERNS.get(country)
    if pattern is not None:
        if not re.fullmatch(pattern, normalized):
            prefix = "EL" if country == "GR" else country
            raise InvalidInput(
                f"tax_id: {value!r} is not a VAT number of {country} (it starts with "
                f"{prefix} followed by the state's digits, e.g. DE123456789 for Germany)",
                code="invalid_tax_id",
            )
        return normalized
    if not _OTHER_TAX_ID.fullmatch(normalized):
        raise InvalidInput(
            f"tax_id: {value!r} is not a tax ID (2 to 32 letters and digits)",
            code="invalid_tax_id",
        )
    return normalized


@dataclass(frozen=True, slots=True)
class BillingDetails:
    """INV-7: who is billed, where; normalized and checked when made."""

    legal_name: str
    country: str
    address: str = ""
    tax_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.legal_name, str) or not self.legal_name.strip():
            raise InvalidInput("legal_name: expected a non-empty text", code="invalid_input")
        name = self.legal_name.strip()
        if len(name) > LEGAL_NAME_MAX:
            raise InvalidInput(f"legal_name: at most {LEGAL_NAME_MAX} characters")
        if not isinstance(self.address, str):
            raise InvalidInput(f"address: expected a text, got {self.address!r}")
        address = "\n".join(line.strip() for line in self.address.strip().splitlines())
        if len(address) > ADDRESS_MAX:
            raise InvalidInput(f"address: at most {ADDRESS_MAX} characters")
        country = country_code(self.country)
        object.__setattr__(self, "legal_name", name)
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "tax_id", tax_id_for(country, self.tax_id))

    @classmethod
    def read(
        cls, legal_name: object, country: object, tax_id: object = None, address: object = None
    ) -> BillingDetails:
        """Details as a person or a document gave them (any types), checked."""
        if not isinstance(legal_name, str):
            raise InvalidInput(f"legal_name: expected a text, got {legal_name!r}")
        if not isinstance(country, str):
            country_code(country)  # raises invalid_country
        if address is not None and not isinstance(address, str):
            raise InvalidInput(f"address: expected a text, got {address!r}")
        if tax_id is not None and not isinstance(tax_id, str):
            tax_id_for("", tax_id)  # raises invalid_tax_id
        return cls(str(legal_name), str(country), address or "", tax_id)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, str | None]:
        return {
            "legal_name": self.legal_name,
            "address": self.address,
            "country": self.country,
            "tax_id": self.tax_id,
        }
