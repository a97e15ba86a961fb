"""Payment providers (PAY-1, PAY-2): the interface, and the built-in sandbox.

`provider` holds the PaymentProvider protocol and its values (CardOnFile, ChargeResult,
Checkout, RefundResult) and errors; `sandbox` the provider with test cards that needs
nothing outside the machine; `sandbox_store` the sandbox's queries on its own tables
(db/tables_sandbox.py).
"""

from tabkeeper.payments.provider import (
    CardDeclined,
    CardOnFile,
    ChargeResult,
    Checkout,
    CheckoutStatus,
    PaymentProvider,
    ProviderError,
    RefundResult,
    UnknownCard,
)
from tabkeeper.payments.sandbox import SandboxProvider

__all__ = [
    "CardDeclined",
    "CardOnFile",
    "ChargeResult",
    "Checkout",
    "CheckoutStatus",
    "PaymentProvider",
    "ProviderError",
    "RefundResult",
    "SandboxProvider",
    "UnknownCard",
]
