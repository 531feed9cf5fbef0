from __future__ import annotations

from tests import factories


def test_it_lists_and_gets_commands(api, keys, world):
    client = api(keys.bob)
    assert [c["id"] for c in client.get("/api/v1/commands/").json()["results"]] == [world.command.pk]
    assert client.get(f"/api/v1/commands/{world.command.pk}/").json()["action"] == "create"
    assert client.get(f"/api/v1/commands/?lock={world.other_lock.pk}").json()["count"] == 0


def test_mallory_gets_404_on_alices_command_and_issue(api, keys, world):
    client = api(keys.mallory)
    assert client.get(f"/api/v1/commands/{world.command.pk}/").status_code == 404
    assert client.get(f"/api/v1/issues/{world.issue.pk}/").status_code == 404
    assert client.get("/api/v1/issues/").json()["count"] == 0


def test_it_lists_and_filters_issues(api, keys, world):
    factories.LockIssueFactory(tenant=world.seaside, lock=world.other_lock, kind="device_offline", status="resolved")
    client = api(keys.bob)
    assert client.get("/api/v1/issues/").json()["count"] == 2
    open_issues = client.get("/api/v1/issues/?status=open").json()["results"]
    assert [(i["id"], i["kind_display"]) for i in open_issues] == [(world.issue.pk, "Command timed out")]
    assert client.get("/api/v1/issues/?kind=device_offline").json()["count"] == 1
    assert client.get(f"/api/v1/issues/{world.issue.pk}/").json()["kind"] == "command_timeout"


def test_a_bad_issue_filter_is_a_field_error(api, keys, world):
    response = api(keys.bob).get("/api/v1/issues/?kind=gremlins")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["kind"]


def test_owner_key_sees_only_issues_on_her_locks(api, keys, world):
    factories.LockIssueFactory(tenant=world.seaside, lock=world.other_lock, kind="low_battery")
    issues = api(keys.olive).get("/api/v1/issues/").json()["results"]
    assert [i["lock"] for i in issues] == [world.lock.pk]
