"""The team template: role-based (admin/manager/user) and department-scoped rules."""

from __future__ import annotations

import httpx
import pytest

from tests.templates.helpers import PASSWORD, ids, import_template, login, signup

USERS = "/api/collections/users/records"


def rec(name: str) -> str:
    return f"/api/collections/{name}/records"


@pytest.fixture
async def team(client: httpx.AsyncClient, su_headers: dict[str, str]) -> dict:
    return await make_team(client, su_headers)


async def make_team(client: httpx.AsyncClient, su_headers: dict[str, str]) -> dict:
    """Import the template and create its accounts (also used by test_oracle.py)."""
    await import_template(client, su_headers, "team")
    # created by a superuser: an admin creating users hits a keepbase bug (test_admin_creates_users)
    admin, ha = await signup(client, "users", "admin@team.test", su_headers, role="admin", department="IT")
    mgr, hm = await signup(client, "users", "mgr@team.test", su_headers, role="manager", department="HR")
    u1, h1 = await signup(client, "users", "u1@team.test", su_headers, role="user", department="HR")
    u2, h2 = await signup(client, "users", "u2@team.test", su_headers, role="user", department="IT")
    return {"admin": admin, "ha": ha, "mgr": mgr, "hm": hm, "u1": u1, "h1": h1, "u2": u2, "h2": h2}


def _new_user(email: str, role: str = "user") -> dict[str, str]:
    return {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD, "role": role, "department": "IT"}


async def test_import_replaces_the_default_users_collection(client: httpx.AsyncClient,
                                                            su_headers: dict[str, str]) -> None:
    await import_template(client, su_headers, "team")
    r = await client.get("/api/collections/users", headers=su_headers)
    got = r.json()
    assert got["id"] == "_pb_users_auth_" and got["manageRule"] == '@request.auth.role = "admin"'
    names = [f["name"] for f in got["fields"]]
    assert {"email", "password", "name", "avatar", "role", "department"} <= set(names)
    role = next(f for f in got["fields"] if f["name"] == "role")
    assert role["values"] == ["admin", "manager", "user"] and role["required"] is True


async def test_admin_creates_users(client: httpx.AsyncClient, team: dict) -> None:
    r = await client.post(USERS, json=_new_user("x@team.test", "manager"), headers=team["ha"])
    assert r.status_code == 200, r.text


async def test_only_admins_create_and_delete_users(client: httpx.AsyncClient, team: dict) -> None:
    ha, hm, h1, u2 = team["ha"], team["hm"], team["h1"], team["u2"]
    for headers in (None, hm, h1):  # guest sign-up, manager, user
        r = await client.post(USERS, json=_new_user("x@team.test"), headers=headers)
        assert r.status_code == 400, r.text
    # nobody signs themselves up as admin either
    assert (await client.post(USERS, json=_new_user("y@team.test", "admin"))).status_code == 400
    assert (await client.delete(f"{USERS}/{u2}", headers=hm)).status_code == 404
    assert (await client.delete(f"{USERS}/{u2}", headers=h1)).status_code == 404
    assert (await client.delete(f"{USERS}/{u2}", headers=ha)).status_code == 204


async def test_directory_is_for_signed_in_users(client: httpx.AsyncClient, team: dict) -> None:
    everyone = sorted([team["admin"], team["mgr"], team["u1"], team["u2"]])
    assert ids(await client.get(USERS)) == []
    assert (await client.get(f"{USERS}/{team['u1']}")).status_code == 404
    assert ids(await client.get(USERS, headers=team["h2"])) == everyone


async def test_users_edit_their_profile_but_not_their_role(client: httpx.AsyncClient, team: dict) -> None:
    u1, h1, u2, hm, ha = team["u1"], team["h1"], team["u2"], team["hm"], team["ha"]
    r = await client.patch(f"{USERS}/{u1}", json={"name": "Uma"}, headers=h1)
    assert r.status_code == 200 and r.json()["name"] == "Uma", r.text
    # resubmitting the unchanged role (as a form that sends the whole record does) is fine
    r = await client.patch(f"{USERS}/{u1}", json={"name": "Uma", "role": "user", "department": "HR"}, headers=h1)
    assert r.status_code == 200, r.text
    # mass assignment: promoting oneself, or moving to another department
    assert (await client.patch(f"{USERS}/{u1}", json={"role": "admin"}, headers=h1)).status_code == 404
    assert (await client.patch(f"{USERS}/{u1}", json={"name": "x", "role": "manager"},
                               headers=h1)).status_code == 404
    assert (await client.patch(f"{USERS}/{u1}", json={"department": "IT"}, headers=h1)).status_code == 404
    # other people's profiles: only the admin
    assert (await client.patch(f"{USERS}/{u2}", json={"name": "x"}, headers=h1)).status_code == 404
    assert (await client.patch(f"{USERS}/{u1}", json={"role": "manager"}, headers=hm)).status_code == 404
    r = await client.get(f"{USERS}/{u1}", headers=h1)
    assert r.json()["role"] == "user" and r.json()["department"] == "HR"
    r = await client.patch(f"{USERS}/{u1}", json={"role": "manager"}, headers=ha)
    assert r.status_code == 200 and r.json()["role"] == "manager", r.text
    # the role is read from the live row: u1's existing token now carries manager rights
    r = await client.post(rec("projects"), json={"name": "Promoted"}, headers=h1)
    assert r.status_code == 200, r.text


async def test_admin_manages_passwords(client: httpx.AsyncClient, team: dict) -> None:
    u1, h2, ha = team["u1"], team["h2"], team["ha"]
    body = {"password": "newpass1234", "passwordConfirm": "newpass1234"}
    assert (await client.patch(f"{USERS}/{u1}", json=body, headers=h2)).status_code == 404
    r = await client.patch(f"{USERS}/{u1}", json=body, headers=ha)  # manageRule: no oldPassword needed
    assert r.status_code == 200, r.text
    r = await client.post("/api/collections/users/auth-with-password",
                          json={"identity": "u1@team.test", "password": "newpass1234"})
    assert r.status_code == 200, r.text


async def test_settings_are_admin_managed(client: httpx.AsyncClient, team: dict) -> None:
    ha, hm, h1 = team["ha"], team["hm"], team["h1"]
    body = {"key": "theme", "value": {"dark": True}}
    assert (await client.post(rec("settings"), json=body, headers=hm)).status_code == 400
    assert (await client.post(rec("settings"), json=body, headers=h1)).status_code == 400
    r = await client.post(rec("settings"), json=body, headers=ha)
    assert r.status_code == 200, r.text
    sid = r.json()["id"]
    assert (await client.post(rec("settings"), json=body, headers=ha)).status_code == 400  # unique key
    assert ids(await client.get(rec("settings"))) == []
    assert ids(await client.get(rec("settings"), headers=h1)) == [sid]
    assert (await client.patch(f"{rec('settings')}/{sid}", json={"value": 1}, headers=hm)).status_code == 404
    assert (await client.patch(f"{rec('settings')}/{sid}", json={"value": 1}, headers=ha)).status_code == 200
    assert (await client.delete(f"{rec('settings')}/{sid}", headers=h1)).status_code == 404
    assert (await client.delete(f"{rec('settings')}/{sid}", headers=ha)).status_code == 204


async def test_projects_managed_by_managers_read_by_all(client: httpx.AsyncClient, team: dict) -> None:
    mgr, ha, hm, h1 = team["mgr"], team["ha"], team["hm"], team["h1"]
    url = rec("projects")
    assert (await client.post(url, json={"name": "P"}, headers=h1)).status_code == 400
    assert (await client.post(url, json={"name": "P"})).status_code == 400
    r = await client.post(url, json={"name": "Payroll", "department": "HR", "lead": mgr}, headers=hm)
    assert r.status_code == 200, r.text
    pid = r.json()["id"]
    assert (await client.post(url, json={"name": "Infra"}, headers=ha)).status_code == 200
    assert len(ids(await client.get(url, headers=h1))) == 2
    r = await client.get(f"{url}/{pid}", headers=h1, params={"expand": "lead"})
    assert r.status_code == 200 and r.json()["expand"]["lead"]["id"] == mgr, r.text
    assert ids(await client.get(url)) == []
    assert (await client.patch(f"{url}/{pid}", json={"status": "active"}, headers=h1)).status_code == 404
    assert (await client.patch(f"{url}/{pid}", json={"status": "active"}, headers=hm)).status_code == 200
    assert (await client.delete(f"{url}/{pid}", headers=h1)).status_code == 404
    assert (await client.delete(f"{url}/{pid}", headers=hm)).status_code == 204


async def test_tasks_managed_by_managers_updated_by_assignee(client: httpx.AsyncClient, team: dict) -> None:
    u1, h1, u2, h2, hm = team["u1"], team["h1"], team["u2"], team["h2"], team["hm"]
    pid = (await client.post(rec("projects"), json={"name": "P"}, headers=hm)).json()["id"]
    other = (await client.post(rec("projects"), json={"name": "Q"}, headers=hm)).json()["id"]
    url = rec("tasks")
    body = {"title": "Write docs", "project": pid, "assignee": u1, "status": "todo"}
    assert (await client.post(url, json=body, headers=h1)).status_code == 400
    r = await client.post(url, json=body, headers=hm)
    assert r.status_code == 200, r.text
    tid = r.json()["id"]
    assert ids(await client.get(url, headers=h1)) == [tid]
    assert ids(await client.get(url, headers=h2)) == []
    assert ids(await client.get(url, headers=hm)) == [tid]
    assert (await client.get(f"{url}/{tid}", headers=h2)).status_code == 404
    # the assignee moves the task along, but cannot reassign, move or rename it
    r = await client.patch(f"{url}/{tid}", json={"status": "in_progress"}, headers=h1)
    assert r.status_code == 200 and r.json()["status"] == "in_progress", r.text
    for change in ({"assignee": u2}, {"project": other}, {"title": "x"}):
        assert (await client.patch(f"{url}/{tid}", json=change, headers=h1)).status_code == 404, change
    assert (await client.patch(f"{url}/{tid}", json={"status": "done"}, headers=h2)).status_code == 404
    assert (await client.patch(f"{url}/{tid}", json={"assignee": u2}, headers=hm)).status_code == 200
    assert ids(await client.get(url, headers=h1)) == []
    assert (await client.delete(f"{url}/{tid}", headers=h2)).status_code == 404
    assert (await client.delete(f"{url}/{tid}", headers=hm)).status_code == 204


async def test_reports_read_by_managers_written_by_admins(client: httpx.AsyncClient, team: dict) -> None:
    admin, ha, hm, h1 = team["admin"], team["ha"], team["hm"], team["h1"]
    url = rec("reports")
    body = {"title": "Q3", "department": "IT", "author": admin}
    assert (await client.post(url, json=body, headers=hm)).status_code == 400
    assert (await client.post(url, json=body, headers=h1)).status_code == 400
    r = await client.post(url, json=body, headers=ha)
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    assert ids(await client.get(url, headers=hm)) == [rid]
    assert ids(await client.get(url, headers=ha)) == [rid]
    assert ids(await client.get(url, headers=h1)) == []
    assert (await client.get(f"{url}/{rid}", headers=h1)).status_code == 404
    assert (await client.patch(f"{url}/{rid}", json={"title": "x"}, headers=hm)).status_code == 404
    assert (await client.delete(f"{url}/{rid}", headers=hm)).status_code == 404
    assert (await client.delete(f"{url}/{rid}", headers=ha)).status_code == 204


async def test_feedback_submitted_by_users_for_themselves(client: httpx.AsyncClient, team: dict) -> None:
    u1, h1, u2, h2, hm, ha = team["u1"], team["h1"], team["u2"], team["h2"], team["hm"], team["ha"]
    pid = (await client.post(rec("projects"), json={"name": "P"}, headers=hm)).json()["id"]
    url = rec("feedback")
    body = {"message": "Great", "project": pid, "rating": 5}
    assert (await client.post(url, json={**body, "author": u1})).status_code == 400  # guest
    assert (await client.post(url, json={**body, "author": u2}, headers=h1)).status_code == 400  # as u2
    r = await client.post(url, json={**body, "author": u1}, headers=h1)
    assert r.status_code == 200, r.text
    fid = r.json()["id"]
    r = await client.post(url, json={**body, "author": u1, "rating": 9}, headers=h1)
    assert r.status_code == 400 and "rating" in r.json()["data"], r.text
    assert ids(await client.get(url, headers=h1)) == [fid]
    assert ids(await client.get(url, headers=h2)) == []
    assert ids(await client.get(url, headers=hm)) == [fid]
    r = await client.patch(f"{url}/{fid}", json={"message": "x"}, headers=h1)
    assert r.status_code == 403 and r.json()["message"] == "Only superusers can perform this action."
    assert (await client.delete(f"{url}/{fid}", headers=h1)).status_code == 404
    assert (await client.delete(f"{url}/{fid}", headers=ha)).status_code == 204


async def test_documents_are_department_scoped(client: httpx.AsyncClient, team: dict,
                                               su_headers: dict[str, str]) -> None:
    ha, hm, h1, h2 = team["ha"], team["hm"], team["h1"], team["h2"]
    url = rec("documents")
    # create: a manager (HR) only in HR, an admin (IT) only in IT, a user never
    assert (await client.post(url, json={"title": "x", "department": "IT"}, headers=hm)).status_code == 400
    assert (await client.post(url, json={"title": "x", "department": "HR"}, headers=h1)).status_code == 400
    assert (await client.post(url, json={"title": "x", "department": "HR"}, headers=ha)).status_code == 400
    r = await client.post(url, json={"title": "Handbook", "department": "HR"}, headers=hm)
    assert r.status_code == 200, r.text
    hr_doc = r.json()["id"]
    r = await client.post(url, json={"title": "Runbook", "department": "IT"}, headers=ha)
    assert r.status_code == 200, r.text
    it_doc = r.json()["id"]
    r = await client.post(url, json={"title": "Budget", "department": "Finance"}, headers=su_headers)
    fin_doc = r.json()["id"]

    # read: same department only
    assert ids(await client.get(url, headers=h1)) == [hr_doc]
    assert ids(await client.get(url, headers=hm)) == [hr_doc]
    assert ids(await client.get(url, headers=h2)) == [it_doc]
    assert ids(await client.get(url, headers=ha)) == [it_doc]
    assert ids(await client.get(url)) == []
    assert (await client.get(f"{url}/{it_doc}", headers=h1)).status_code == 404
    assert (await client.get(f"{url}/{hr_doc}", headers=h1)).status_code == 200
    assert ids(await client.get(url, params={"filter": "department = 'IT'"}, headers=h1)) == []
    # a user without a department reads nothing (empty = empty must not match)
    await signup(client, "users", "nodept@team.test", su_headers, role="user")
    h0 = await login(client, "users", "nodept@team.test")
    assert ids(await client.get(url, headers=h0)) == []
    assert (await client.get(f"{url}/{fin_doc}", headers=h0)).status_code == 404

    # update/delete: managers of the department; the document cannot leave it
    r = await client.patch(f"{url}/{hr_doc}", json={"content": "<p>v2</p>"}, headers=hm)
    assert r.status_code == 200, r.text
    assert (await client.patch(f"{url}/{hr_doc}", json={"department": "IT"}, headers=hm)).status_code == 404
    assert (await client.patch(f"{url}/{hr_doc}", json={"title": "x"}, headers=h1)).status_code == 404
    assert (await client.patch(f"{url}/{it_doc}", json={"title": "x"}, headers=hm)).status_code == 404
    assert (await client.delete(f"{url}/{it_doc}", headers=hm)).status_code == 404
    assert (await client.delete(f"{url}/{hr_doc}", headers=h1)).status_code == 404
    assert (await client.delete(f"{url}/{hr_doc}", headers=hm)).status_code == 204
