"""The pure core of tabkeeper.

Nothing in this package imports sqlalchemy, fastapi or pydantic, does I/O, or reads the
system clock: every function that needs the time takes `now`. tests/unit/test_purity.py
holds this package to that.
"""
