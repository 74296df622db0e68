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

    from billing_api.models.access_log import is_partition

    # The access log's monthly partitions are made at run time, not by a model.
    opts = {"include_name": lambda name, kind, parent: not (kind == "table" and is_partition(name))}
    diff = await connection.run_sync(
        lambda sync: compare_metadata(MigrationContext.configure(sync, opts=opts), Base.metadata))
    assert [d for d in diff if "procrastinate" not in str(d)] == []


async def test_the_code_systems_migration_keeps_every_existing_line(connection, factory):
    """Lines written before code systems (`cpt_code`) come through the upgrade with their codes classified by
    shape (CPT, HCPCS, else `legacy`; none stays none), and the downgrade gives every code back to `cpt_code` (all
    inside the test's transaction, rolled back after)."""
    from alembic import command
    from sqlalchemy import text

    from billing_api.migrations_runner import alembic_config

    company = await factory.company()
    provider = await factory.user(company, provider=True)
    await factory.session.commit()  # the fixture's savepoint; the connection's transaction goes on
    codes = ["99213", "0042T", "1036F", "A0427", "ABCDE", "9921Z", None]
    expected = [("cpt", "99213"), ("cpt", "0042T"), ("cpt", "1036F"), ("hcpcs", "A0427"), ("legacy", "ABCDE"),
                ("legacy", "9921Z"), (None, None)]

    def config(sync):
        alembic = alembic_config()
        alembic.attributes["connection"] = sync
        return alembic

    # The revision before code systems, wherever the chain puts this one.
    before = ScriptDirectory.from_config(alembic_config()).get_revision("codes").down_revision

    def down_and_insert(sync) -> None:
        command.downgrade(config(sync), before)
        params = {"company": company.id, "provider": provider.id}
        sync.execute(text("""
            INSERT INTO patient (id, company_id, first_name, last_name, created_at)
            VALUES ('00000000-0000-4000-8000-000000000001', :company, 'Old', 'Row', now());
            """), params)
        sync.execute(text("""
            INSERT INTO encounter (id, company_id, patient_id, provider_id, service_date, imported, created_at)
            VALUES ('00000000-0000-4000-8000-000000000002', :company, '00000000-0000-4000-8000-000000000001',
                    :provider, DATE '2026-11-01', false, now())"""), params)
        sync.execute(text("""
            INSERT INTO bill (id, company_id, provider_id, patient_id, encounter_id, coverage, status, source,
                              service_date, total_cents, balance_cents, created_at, updated_at)
            VALUES ('00000000-0000-4000-8000-000000000003', :company, :provider,
                    '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 'private',
                    'draft', 'manual', DATE '2026-11-01', 700, 700, now(), now())"""), params)
        for table, owner, key in (("encounter_line", "encounter_id", "00000000-0000-4000-8000-000000000002"),
                                  ("bill_line", "bill_id", "00000000-0000-4000-8000-000000000003")):
            for position, code in enumerate(codes):
                sync.execute(text(f"""
                    INSERT INTO {table} (id, {owner}, position, cpt_code, description, units, fee_cents)
                    VALUES (gen_random_uuid(), :key, :position, :code, 'Old line', 1, 100)"""),
                    {"key": key, "position": position, "code": code})
        command.upgrade(config(sync), "head")

    await connection.run_sync(down_and_insert)
    for table in ("encounter_line", "bill_line"):
        rows = (await connection.execute(text(
            f"SELECT code_system::text, code, modifiers, diagnosis_pointers, description, fee_cents FROM {table} "
            "WHERE description = 'Old line' ORDER BY position"))).all()
        assert [(system, code) for system, code, *_ in rows] == expected, table
        assert all(row[2:] == ([], [], "Old line", 100) for row in rows)
    for table in ("bill", "encounter"):
        diagnoses = (await connection.execute(text(
            f"SELECT diagnoses FROM {table} WHERE id::text LIKE '00000000-0000-4000-8000-%'"))).scalar_one()
        assert diagnoses == []
    settings = (await connection.execute(text(
        "SELECT service_code_systems, diagnosis_code_systems FROM company WHERE id = :id"), {"id": company.id})).one()
    assert tuple(settings) == (None, None)  # never chosen: today's five characters stay valid

    # An Ontario code written since goes back to `cpt_code` too: nothing of the code is lost on the way down.
    await connection.execute(text("UPDATE bill_line SET code_system = 'ohip', code = 'A007A' "
                                  "WHERE description = 'Old line' AND position = 0"))
    await connection.run_sync(lambda sync: command.downgrade(config(sync), before))
    down = (await connection.execute(text(
        "SELECT cpt_code FROM bill_line WHERE description = 'Old line' ORDER BY position"))).scalars().all()
    assert down == ["A007A", *codes[1:]]
    await connection.run_sync(lambda sync: command.upgrade(config(sync), "head"))
