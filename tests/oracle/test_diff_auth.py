"""Differential tests: record auth endpoints, keepbase vs the real PocketBase 0.40 binary.

Covers auth-methods (password only; with OTP + MFA), auth-with-password success and failures,
auth-refresh (valid, invalid and missing token), request-verification / request-password-reset /
request-email-change, the confirm-* endpoints with bad tokens, request-otp and auth-with-otp with a
bad code, the MFA first step (401 ``{mfaId}``), impersonation, and guest / regular-user access to
superuser-only routes.

Every scenario works on its own auth collection (unique name, deleted afterwards) so the shared
PocketBase is never reconfigured globally. Tokens, record ids and "now" timestamps are normalised
by the harness; keys, value types, status codes, error codes and messages are compared.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.oracle.harness import (
    GUEST,
    ORACLE_MARKS,
    PocketBase,
    Scenario,
    Step,
    assert_same_as_pocketbase,
    pocketbase_run,
)

pytestmark = ORACLE_MARKS

PASSWORD = "userpass123456"
SCENARIOS: list[Scenario] = []


def scenario(name: str, steps: list[Step], **kw: Any) -> None:
    SCENARIOS.append(Scenario(name=name, steps=steps, **kw))


def auth_collection(name: str, **options: Any) -> Step:
    body = {"name": name, "type": "auth", "listRule": None, "viewRule": "id = @request.auth.id",
            "createRule": "", "updateRule": "id = @request.auth.id", "deleteRule": None,
            "fields": [{"name": "name", "type": "text"}], **options}
    return Step("POST", "/api/collections", json=body, status_only=True, label=f"create auth collection {name}")


def user(coll: str, email: str, var: str = "uid", **extra: Any) -> Step:
    return Step("POST", f"/api/collections/{coll}/records", status_only=True, save={var: "id"},
                json={"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD, **extra},
                label=f"create user {email}")


def login(coll: str, email: str, password: str = PASSWORD, var: str = "utoken", **kw: Any) -> Step:
    return Step("POST", f"/api/collections/{coll}/auth-with-password", auth=GUEST,
                json={"identity": email, "password": password}, save={var: "token"},
                label=kw.pop("label", f"auth-with-password {email} / {password}"), **kw)


def as_user(method: str, path: str, label: str = "", var: str = "utoken", **kw: Any) -> Step:
    return Step(method, path, auth=GUEST, headers={"Authorization": "{" + var + "}"},
                label=label or f"{method} {path} as user", **kw)


# --------------------------------------------------------------------------- auth-methods

scenario("auth_methods_password_only", [
    auth_collection("dau_pw"),
    Step("GET", "/api/collections/dau_pw/auth-methods", auth=GUEST, label="auth-methods (defaults)"),
    Step("PATCH", "/api/collections/dau_pw", json={"passwordAuth": {"enabled": True, "identityFields": ["email"]},
                                                   "otp": {"enabled": False}, "mfa": {"enabled": False}},
         status_only=True, label="password only"),
    Step("GET", "/api/collections/dau_pw/auth-methods", auth=GUEST, label="auth-methods (password only)"),
    Step("GET", "/api/collections/dau_pw/auth-methods?fields=password", auth=GUEST, label="fields=password"),
], key_order=True)

scenario("auth_methods_bad_collection", [
    Step("GET", "/api/collections/dau_missing/auth-methods", auth=GUEST, label="unknown collection"),
])

scenario("auth_methods_otp_mfa", [
    auth_collection("dau_mfa", otp={"enabled": True, "duration": 300, "length": 6},
                    mfa={"enabled": True, "duration": 900}),
    Step("GET", "/api/collections/dau_mfa/auth-methods", auth=GUEST, label="auth-methods (otp + mfa)"),
], key_order=True)

scenario("mfa_needs_two_methods", [
    auth_collection("dau_mfa3", otp={"enabled": True}, mfa={"enabled": True}),
    Step("PATCH", "/api/collections/dau_mfa3", json={"passwordAuth": {"enabled": False}},
         label="password auth off leaves one method"),
    Step("GET", "/api/collections/dau_mfa3/auth-methods", auth=GUEST, label="auth-methods after"),
])

# --------------------------------------------------------------------------- password / refresh

scenario("auth_with_password", [
    auth_collection("dau_login"),
    user("dau_login", "login@example.com", name="Lo"),
    login("dau_login", "login@example.com", label="success"),
    login("dau_login", "LOGIN@example.com", var="t2", label="identity in another letter case"),
    login("dau_login", "login@example.com", "wrong-password", var="bad", label="wrong password"),
    login("dau_login", "nobody@example.com", var="bad", label="unknown identity"),
    Step("POST", "/api/collections/dau_login/auth-with-password", auth=GUEST, json={}, label="empty body"),
    Step("POST", "/api/collections/dau_login/auth-with-password?expand=&fields=token,record.email", auth=GUEST,
         json={"identity": "login@example.com", "password": PASSWORD}, label="fields=token,record.email"),
    Step("PATCH", "/api/collections/dau_login", json={"passwordAuth": {"enabled": False}},
         status_only=True, label="password auth off"),
    login("dau_login", "login@example.com", var="bad", label="password auth disabled"),
], key_order=True)

scenario("auth_with_password_identity_field", [
    auth_collection("dau_idf"),
    user("dau_idf", "idf@example.com", name="Lo"),
    Step("POST", "/api/collections/dau_idf/auth-with-password", auth=GUEST,
         json={"identity": "idf@example.com", "password": PASSWORD, "identityField": "name"},
         label="identityField not in passwordAuth.identityFields"),
])

scenario("auth_refresh", [
    auth_collection("dau_refresh"),
    user("dau_refresh", "refresh@example.com"),
    login("dau_refresh", "refresh@example.com", status_only=True),
    as_user("POST", "/api/collections/dau_refresh/auth-refresh", label="valid token"),
    Step("POST", "/api/collections/dau_refresh/auth-refresh", auth=GUEST, label="no token"),
    Step("POST", "/api/collections/dau_refresh/auth-refresh", auth=GUEST,
         headers={"Authorization": "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IngifQ.c2lnbmF0dXJl"}, label="invalid token"),
    Step("POST", "/api/collections/dau_refresh/auth-refresh", auth=GUEST,
         headers={"Authorization": "garbage"}, label="garbage token"),
    Step("POST", "/api/collections/_superusers/auth-refresh", label="superuser refresh"),
], key_order=True)

scenario("auth_refresh_other_collection", [
    auth_collection("dau_refresh2"),
    user("dau_refresh2", "refresh2@example.com"),
    login("dau_refresh2", "refresh2@example.com", status_only=True),
    as_user("POST", "/api/collections/_superusers/auth-refresh", label="user token on _superusers"),
])

# --------------------------------------------------------------------------- request-* / confirm-*

scenario("request_and_confirm", [
    auth_collection("dau_mail"),
    user("dau_mail", "mail@example.com"),
    Step("POST", "/api/collections/dau_mail/request-verification", auth=GUEST,
         json={"email": "unknown@example.com"}, label="request-verification unknown email"),
    Step("POST", "/api/collections/dau_mail/request-verification", auth=GUEST, json={}, label="request-verification {}"),
    Step("POST", "/api/collections/dau_mail/request-verification", auth=GUEST,
         json={"email": "not-an-email"}, label="request-verification invalid email"),
    Step("POST", "/api/collections/dau_mail/request-password-reset", auth=GUEST,
         json={"email": "unknown@example.com"}, label="request-password-reset unknown email"),
    Step("POST", "/api/collections/dau_mail/request-password-reset", auth=GUEST, json={},
         label="request-password-reset {}"),
    Step("POST", "/api/collections/dau_mail/confirm-verification", auth=GUEST, json={"token": "bad"},
         label="confirm-verification bad token"),
    Step("POST", "/api/collections/dau_mail/confirm-verification", auth=GUEST, json={},
         label="confirm-verification {}"),
    Step("POST", "/api/collections/dau_mail/confirm-password-reset", auth=GUEST,
         json={"token": "bad", "password": "newpass123456", "passwordConfirm": "newpass123456"},
         label="confirm-password-reset bad token"),
    Step("POST", "/api/collections/dau_mail/confirm-password-reset", auth=GUEST, json={},
         label="confirm-password-reset {}"),
    Step("POST", "/api/collections/dau_mail/confirm-email-change", auth=GUEST,
         json={"token": "bad", "password": PASSWORD}, label="confirm-email-change bad token"),
    Step("POST", "/api/collections/dau_mail/request-email-change", auth=GUEST,
         json={"newEmail": "new@example.com"}, label="request-email-change as guest"),
    login("dau_mail", "mail@example.com", status_only=True),
    as_user("POST", "/api/collections/dau_mail/confirm-verification", json={"token": "{utoken}"},
            label="confirm-verification with an auth token"),
    as_user("POST", "/api/collections/dau_mail/request-email-change", json={"newEmail": "mail@example.com"},
            label="request-email-change to the same email"),
])

# --------------------------------------------------------------------------- OTP / MFA

scenario("otp", [
    auth_collection("dau_otp"),
    user("dau_otp", "otp@example.com"),
    Step("POST", "/api/collections/dau_otp/request-otp", auth=GUEST, json={"email": "nobody@example.com"},
         label="request-otp with otp disabled"),
    Step("PATCH", "/api/collections/dau_otp", json={"otp": {"enabled": True}}, status_only=True, label="otp on"),
    Step("POST", "/api/collections/dau_otp/request-otp", auth=GUEST, json={"email": "nobody@example.com"},
         save={"otp_unknown": "otpId"}, label="request-otp unknown email"),
    Step("POST", "/api/collections/dau_otp/request-otp", auth=GUEST, json={}, label="request-otp {}"),
    Step("POST", "/api/collections/dau_otp/request-otp", auth=GUEST, json={"email": "bad"},
         label="request-otp invalid email"),
    Step("POST", "/api/collections/dau_otp/auth-with-otp", auth=GUEST,
         json={"otpId": "{otp_unknown}", "password": "000000"}, label="auth-with-otp for an unknown email"),
    Step("POST", "/api/collections/dau_otp/auth-with-otp", auth=GUEST,
         json={"otpId": "missing00000001", "password": "000000"}, label="auth-with-otp unknown otpId"),
    Step("POST", "/api/collections/dau_otp/auth-with-otp", auth=GUEST, json={}, label="auth-with-otp {}"),
])

scenario("mfa_first_step", [
    auth_collection("dau_mfa2", otp={"enabled": True}, mfa={"enabled": True}),
    user("dau_mfa2", "mfa@example.com"),
    login("dau_mfa2", "mfa@example.com", var="mfa", label="password step -> 401 mfaId"),
    Step("POST", "/api/collections/dau_mfa2/auth-with-password", auth=GUEST,
         json={"identity": "mfa@example.com", "password": PASSWORD}, save={"mfaId": "mfaId"},
         status_only=True, label="password step again"),
    Step("POST", "/api/collections/dau_mfa2/auth-with-password", auth=GUEST,
         json={"identity": "mfa@example.com", "password": PASSWORD, "mfaId": "{mfaId}"},
         label="same method again with the mfaId"),
    Step("POST", "/api/collections/dau_mfa2/auth-with-password", auth=GUEST,
         json={"identity": "mfa@example.com", "password": PASSWORD, "mfaId": "missing00000001"},
         label="unknown mfaId"),
    login("dau_mfa2", "mfa@example.com", "wrong-password", var="bad", label="wrong password with mfa on"),
], key_order=True)

# --------------------------------------------------------------------------- impersonate / access

scenario("impersonate", [
    auth_collection("dau_imp"),
    user("dau_imp", "imp@example.com"),
    Step("POST", "/api/collections/dau_imp/impersonate/{uid}", json={"duration": 3600}, save={"itoken": "token"},
         label="superuser impersonates"),
    as_user("GET", "/api/collections/dau_imp/records/{uid}", var="itoken", label="the token works"),
    as_user("POST", "/api/collections/dau_imp/auth-refresh", var="itoken",
            label="auth-refresh with an impersonation token"),
    Step("POST", "/api/collections/dau_imp/impersonate/{uid}", label="no body"),
    Step("POST", "/api/collections/dau_imp/impersonate/{uid}", json={"duration": -1}, label="negative duration"),
    Step("POST", "/api/collections/dau_imp/impersonate/missing00000001", label="unknown record"),
    Step("POST", "/api/collections/dau_imp/impersonate/{uid}", auth=GUEST, label="as guest"),
    login("dau_imp", "imp@example.com", status_only=True),
    as_user("POST", "/api/collections/dau_imp/impersonate/{uid}", label="as the user"),
], key_order=True)

scenario("superuser_routes", [
    auth_collection("dau_acl"),
    user("dau_acl", "acl@example.com"),
    login("dau_acl", "acl@example.com", status_only=True),
    *[s for path in ["/api/settings", "/api/collections", "/api/collections/_superusers/records"]
      for s in (Step("GET", path, auth=GUEST, label=f"GET {path} as guest"),
                as_user("GET", path, label=f"GET {path} as user"))],
    Step("PATCH", "/api/settings", auth=GUEST, json={}, label="PATCH settings as guest"),
    as_user("PATCH", "/api/settings", json={}, label="PATCH settings as user"),
    Step("POST", "/api/collections", auth=GUEST, json={"name": "dau_x"}, label="create collection as guest"),
    as_user("POST", "/api/collections", json={"name": "dau_x"}, label="create collection as user"),
    Step("POST", "/api/collections/_superusers/auth-with-password", auth=GUEST,
         json={"identity": "acl@example.com", "password": PASSWORD}, label="user credentials on _superusers"),
])

scenario("superuser_routes_logs_crons", [
    auth_collection("dau_acl2"),
    user("dau_acl2", "acl2@example.com"),
    login("dau_acl2", "acl2@example.com", status_only=True),
    *[s for method, path in [("GET", "/api/logs"), ("GET", "/api/logs/stats"), ("GET", "/api/logs/abc"),
                             ("DELETE", "/api/logs"), ("GET", "/api/crons"), ("POST", "/api/crons/__pbLogsCleanup__"),
                             ("POST", "/api/crons/nope")]
      for s in (Step(method, path, auth=GUEST, label=f"{method} {path} as guest"),
                as_user(method, path, label=f"{method} {path} as user"))],
])

scenario("superuser_routes_backups", [
    auth_collection("dau_acl3"),
    user("dau_acl3", "acl3@example.com"),
    login("dau_acl3", "acl3@example.com", status_only=True),
    *[s for method, path in [("GET", "/api/backups"), ("POST", "/api/backups"), ("POST", "/api/backups/upload"),
                             ("GET", "/api/backups/x.zip"), ("DELETE", "/api/backups/x.zip"),
                             ("POST", "/api/backups/x.zip/restore")]
      for s in (Step(method, path, auth=GUEST, label=f"{method} {path} as guest"),
                as_user(method, path, label=f"{method} {path} as user"))],
])

SCENARIO_IDS = [s.name for s in SCENARIOS]


_pocketbase_run = pocketbase_run


@pytest.mark.parametrize("sc", SCENARIOS, ids=SCENARIO_IDS)
async def test_auth_same_as_pocketbase(sc: Scenario, engine: str, client: httpx.AsyncClient,
                                       su_headers: dict[str, str], pocketbase: PocketBase,
                                       pocketbase_runs: dict[str, Any], request: pytest.FixtureRequest) -> None:
    await assert_same_as_pocketbase(sc, pocketbase, pocketbase_runs, client, su_headers, engine, request)
