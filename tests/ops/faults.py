"""Faults injected in the database itself (temporary triggers), and a picture of everything it holds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@asynccontextmanager
async def failing_insert(engine: AsyncEngine, table: str, *, on_row: int = 1, at_commit: bool = False
                         ) -> AsyncIterator[None]:
    """Inserts into `table` fail from its `on_row`-th row on (counted across statements), either at once or,
    with `at_commit`, when the transaction commits (a deferred constraint trigger: the row is written first)."""
    name = f"ops_fault_{uuid.uuid4().hex[:10]}"
    timing = "CONSTRAINT TRIGGER {0} AFTER INSERT ON {1} DEFERRABLE INITIALLY DEFERRED" if at_commit else \
        "TRIGGER {0} AFTER INSERT ON {1}"
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE SEQUENCE {name}_rows"))
        await connection.execute(text(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF nextval('{name}_rows') >= {on_row} THEN RAISE EXCEPTION 'injected fault on {table}'; END IF; "
            f"RETURN NEW; END $$"))
        await connection.execute(text(f"CREATE {timing.format(name, table)} FOR EACH ROW EXECUTE FUNCTION {name}()"))
    try:
        yield
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP TRIGGER {name} ON {table}"))
            await connection.execute(text(f"DROP FUNCTION {name}()"))
            await connection.execute(text(f"DROP SEQUENCE {name}_rows"))


async def database_state(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every table: equal before and after means nothing at all was written."""
    async with engine.connect() as connection:
        tables = (await connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))).scalars().all()
        return {table: sorted(repr(tuple(row)) for row in await connection.execute(text(f'SELECT * FROM "{table}"')))
                for table in tables}


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> set[str]:
    return {table for table in before.keys() | after.keys() if before.get(table) != after.get(table)}
