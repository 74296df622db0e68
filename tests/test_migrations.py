"""The migrations form one line of history: one head, and every model table exists after upgrading."""

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from billing_api.migrations_runner import alembic_config
from billing_api.models import Base


def test_one_head():
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


async def test_upgrade_creates_every_model_table(connection):
    tables = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    assert set(Base.metadata.tables) <= tables


async def test_models_and_migrations_agree(connection):
    """Autogenerate finds nothing to do: the migrations build exactly the models (Procrastinate's own
    tables, created by a migration too, are not models)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    diff = await connection.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    assert [d for d in diff if "procrastinate" not in str(d)] == []
