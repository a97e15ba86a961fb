"""The HTTP API (FastAPI): `create_app(settings)`."""

from tabkeeper.api.app import create_app

__all__ = ["create_app"]
