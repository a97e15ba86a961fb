"""Settings from environment variables prefixed TABKEEPER_, read once (DESIGN.md)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where tabkeeper keeps its data and how it reaches the outside world.

    TABKEEPER_DATABASE_URL: `sqlite:///var/tabkeeper.db` (the default, a file under var/)
    or `postgresql://user:password@host:port/database`.
    """

    model_config = SettingsConfigDict(env_prefix="TABKEEPER_", extra="ignore")

    database_url: str = "sqlite:///var/tabkeeper.db"
