"""The database's own id: a random string stored in ``_params`` on first use.

Every node of one database reads the same id, whatever URL it reaches the database by, and two
databases never share one. Shared services (Redis) namespace their channels and keys with it.
A database restored from a backup keeps the id of the database it was taken from.
"""

from __future__ import annotations

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError

from ..core.clock import now_str
from ..core.config import Config
from ..core.ids import random_string
from .db import Database

KEY = "kbDatabaseId"


def database_id(db: Database, params: Table) -> str:
    with db.read() as conn:
        row = conn.execute(select(params.c.value).where(params.c.id == KEY)).first()
    if row is not None and row[0]:
        return str(row[0])
    try:
        with db.write() as conn:
            now = now_str()
            conn.execute(insert(params).values(id=KEY, value=random_string(15), created=now, updated=now))
    except IntegrityError:  # another node created it first
        pass
    with db.read() as conn:
        return str(conn.execute(select(params.c.value).where(params.c.id == KEY)).scalar_one())


def redis_namespace(config: Config, db: Database, params: Table) -> str:
    """``<prefix>:<database id>``: where this database's Redis channel and keys live."""
    return f"{config.redis_prefix}:{database_id(db, params)}"
