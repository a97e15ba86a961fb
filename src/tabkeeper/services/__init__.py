"""Use cases, one module per area. They take a `Billing` context (a session in an open
transaction, the time, the platform and its terms), load rows, ask the pure domain what
to do, write the result and the notices, and return. They never commit: the entry point
(an HTTP route, a CLI command, a worker tick, the simulator) does.

Payment flows are the one exception: a call to the payment provider must not happen
inside a database transaction, so checkout completion and collection run in steps, each
its own transaction, and are written to be rerun safely after a crash (INV-4).
"""
