"""Storage: SQLAlchemy 2 tables, the engine, transactions and Alembic migrations."""
