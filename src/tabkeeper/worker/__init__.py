"""The billing clock: finds due work by query, claims it, does it, idempotently (INV-4)."""
