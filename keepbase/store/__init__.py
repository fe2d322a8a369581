"""Storage: engines, schema, fields, record services (SQLAlchemy Core on SQLite and PostgreSQL)."""
