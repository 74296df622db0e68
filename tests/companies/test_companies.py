"""Companies: list (reach), get, child companies (two levels), update."""

import uuid

from tests.helpers import ADMIN, SUPPORT, assert_problem, count


async def listed_ids(client, headers):
    response = await client.get("/v1/companies", headers=headers)
    assert response.status_code == 200, response.text
    return [company["id"] for company in response.json()["items"]]


async def test_list_shows_the_companies_the_caller_reaches(client, factory):
    parent = await factory.company("West EMS Transport", time_zone="America/Denver")
    north = await factory.company("West EMS North", parent=parent)
    south = await factory.company("West EMS South", parent=parent)
    elsewhere = await factory.company("Elsewhere Clinic")
    betty = await factory.user(parent, account_type=ADMIN)
    barney = await factory.user(parent)
    north_admin = await factory.user(north, account_type=ADMIN)
    support = await factory.user(await factory.company("Vendor"), account_type=SUPPORT)

    # Parents first, then children, by name.
    assert await listed_ids(client, factory.headers(betty)) == [str(parent.id), str(north.id), str(south.id)]
    assert await listed_ids(client, factory.headers(barney)) == [str(parent.id)]
    assert await listed_ids(client, factory.headers(north_admin)) == [str(north.id)]
    assert set(await listed_ids(client, factory.headers(support))) >= {
        str(parent.id), str(north.id), str(south.id), str(elsewhere.id), str(support.company_id)}

    item = (await client.get("/v1/companies", headers=factory.headers(barney))).json()["items"][0]
    assert item["name"] == "West EMS Transport" and item["time_zone"] == "America/Denver"
    assert item["parent_id"] is None and item["billing_segregation_enabled"] is False

    me = (await client.get("/v1/me", headers=factory.headers(betty))).json()
    assert {c["id"] for c in me["reachable_companies"]} == {str(parent.id), str(north.id), str(south.id)}
    assert me["company"]["id"] == str(parent.id)


async def test_get_a_company_only_where_reached(client, factory):
    parent = await factory.company()
    child = await factory.company(parent=parent)
    elsewhere = await factory.company()
    admin = await factory.user(parent, account_type=ADMIN)
    plain = await factory.user(parent)
    support = await factory.user(await factory.company(), account_type=SUPPORT)

    got = await client.get(f"/v1/companies/{child.id}", headers=factory.headers(admin))
    assert got.status_code == 200 and got.json()["parent_id"] == str(parent.id)
    assert_problem(await client.get(f"/v1/companies/{child.id}", headers=factory.headers(plain)), 404,
                   "company_not_found")
    assert_problem(await client.get(f"/v1/companies/{elsewhere.id}", headers=factory.headers(admin)), 404,
                   "company_not_found")
    assert_problem(await client.get(f"/v1/companies/{uuid.uuid4()}", headers=factory.headers(admin)), 404,
                   "company_not_found")
    assert (await client.get(f"/v1/companies/{elsewhere.id}", headers=factory.headers(support))).status_code == 200


async def test_company_admin_of_the_parent_creates_a_child(client, factory, session):
    parent = await factory.company()
    admin = await factory.user(parent, account_type=ADMIN)
    headers = factory.headers(admin)
    response = await client.post("/v1/companies", headers=headers, json={
        "name": "West EMS Mountain", "parent_id": str(parent.id), "time_zone": "America/Edmonton"})
    assert response.status_code == 201, response.text
    child = response.json()
    assert child["parent_id"] == str(parent.id) and child["time_zone"] == "America/Edmonton"
    assert child["name"] == "West EMS Mountain" and child["billing_segregation_enabled"] is False
    assert child["id"] in await listed_ids(client, headers)
    assert await count(session, "audit_event", "action = 'company.created' AND target_id = :c",
                       c=uuid.UUID(child["id"])) == 1
    default_zone = await client.post("/v1/companies", headers=headers,
                                     json={"name": "West EMS Valley", "parent_id": str(parent.id)})
    assert default_zone.status_code == 201 and default_zone.json()["time_zone"] == "UTC"


async def test_who_may_create_a_child_company(client, factory, session):
    parent = await factory.company()
    child = await factory.company(parent=parent)
    elsewhere = await factory.company()
    admin = await factory.user(parent, account_type=ADMIN)
    editor = await factory.user(parent, permissions=["users:edit_others"])
    child_admin = await factory.user(child, account_type=ADMIN)
    other_admin = await factory.user(elsewhere, account_type=ADMIN)
    support = await factory.user(await factory.company(), account_type=SUPPORT)
    before = await count(session, "company")

    def body(parent_id, **extra):
        return {"name": "New child", "parent_id": str(parent_id), **extra}

    assert_problem(await client.post("/v1/companies", json=body(parent.id), headers=factory.headers(editor)), 403,
                   "company_admin_required")
    assert_problem(await client.post("/v1/companies", json=body(parent.id), headers=factory.headers(support)), 403,
                   "company_admin_required")
    assert_problem(await client.post("/v1/companies", json=body(parent.id), headers=factory.headers(other_admin)),
                   404, "company_not_found")
    assert_problem(await client.post("/v1/companies", json=body(uuid.uuid4()), headers=factory.headers(admin)),
                   404, "company_not_found")
    # Two levels only: a child cannot get children, whoever asks.
    assert_problem(await client.post("/v1/companies", json=body(child.id), headers=factory.headers(child_admin)),
                   422, "company_depth_exceeded")
    assert_problem(await client.post("/v1/companies", json=body(child.id), headers=factory.headers(admin)),
                   422, "company_depth_exceeded")
    bad_zone = assert_problem(await client.post("/v1/companies", json=body(parent.id, time_zone="Mars/Olympus"),
                                                headers=factory.headers(admin)), 422, "validation_error")
    assert bad_zone["errors"][0]["location"] == ["body", "time_zone"]
    assert await count(session, "company") == before


async def test_update_a_company(client, factory, session):
    parent = await factory.company("Old name")
    child = await factory.company(parent=parent)
    admin = await factory.user(parent, account_type=ADMIN)
    plain = await factory.user(parent)
    support = await factory.user(await factory.company(), account_type=SUPPORT)
    headers = factory.headers(admin)

    renamed = await client.patch(f"/v1/companies/{parent.id}", json={"name": "New name"}, headers=headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "New name" and renamed.json()["time_zone"] == "UTC"
    zoned = await client.patch(f"/v1/companies/{child.id}", json={"time_zone": "Europe/Paris"}, headers=headers)
    assert zoned.status_code == 200 and zoned.json()["time_zone"] == "Europe/Paris"
    assert (await client.get(f"/v1/companies/{child.id}", headers=headers)).json()["time_zone"] == "Europe/Paris"

    assert_problem(await client.patch(f"/v1/companies/{parent.id}", json={"name": "X"},
                                      headers=factory.headers(plain)), 403, "company_admin_required")
    assert_problem(await client.patch(f"/v1/companies/{parent.id}", json={"name": "X"},
                                      headers=factory.headers(support)), 403, "company_admin_required")
    assert_problem(await client.patch(f"/v1/companies/{parent.id}", json={"time_zone": "Nowhere/Land"},
                                      headers=headers), 422, "validation_error")
    # Regression: an explicit null was silently ignored (200); it is an error, as for users and groups.
    assert_problem(await client.patch(f"/v1/companies/{parent.id}", json={"name": None}, headers=headers), 422,
                   "field_required")
    await session.refresh(parent)
    assert parent.name == "New name" and parent.time_zone == "UTC"
