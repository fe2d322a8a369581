"""OAuth2 sign-in (PocketBase's auth-with-oauth2), with authlib doing the token exchange.

The flow of ``authenticate``:

1. Validate the form (``provider``, ``code``, ``redirectURL``), initialise the provider.
2. Exchange the code at the provider's token endpoint, with the PKCE ``code_verifier`` — the
   provider checks it against the challenge it received from ``auth-methods``' URL.
3. Fetch the external user and normalise it (``oauth2_providers.AuthUser``).
4. Find the record: the ``_externalAuths`` link (collection, provider, providerId), else the
   signed-in record of the same collection, else — **only when the provider vouches for the
   email** — the record with that email. Else a new record is created from ``createData``, the
   provider's email and the collection's ``oauth2.mappedFields``.
5. In one transaction: create or update the record, then link ``_externalAuths``.

Security decisions (why, at length):

* An email the provider does not vouch for never selects an existing account, never fills in a
  missing email and never marks a record verified. Otherwise anyone able to put your address on
  an account at some provider (an Entra tenant, a self-hosted OIDC server) could sign in as you.
  With such an email a *new* account is created; if the address is already taken the unique
  email index refuses it, so the sign-in fails instead of taking the account over.
* When a vouched-for email selects an existing, unverified record, the provider's proof of the
  address wins over whoever registered it first (possibly someone squatting on a victim's
  address): the sign-in succeeds and the pre-registration loses every way back in, as in
  PocketBase. Its password is replaced by a random one (which rotates the tokenKey, so every
  token issued to it dies), every external identity linked to the record is unlinked (the
  squatter may have linked their own), and its pending MFA sessions are dropped.
* An empty provider user id is refused: it would link every such user to one account.
* The avatar URL comes from the external user's profile, so it is fetched only through the
  egress guard (``security.egress``): public addresses only, pinned, redirects re-checked,
  size and time capped. A refused or failed download skips the avatar, never the sign-in.
  There is no exception for the provider's own host: it would let a profile point at any port
  of that host. ``OAuth2Service.egress`` may be given an explicit allow-list instead.
* The token, user-info, JWKS and discovery URLs are *not* guarded: they come from the
  provider configuration, which only superusers write, and a self-hosted provider on a private
  network is a normal deployment. They have the HTTP timeout of ``HTTP_TIMEOUT``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from sqlalchemy import delete, insert, select

from ..core.clock import now_str
from ..core.errors import REQUIRED, ApiError, BadRequestError, FieldError, ForbiddenError, ValidationError
from ..core.ids import new_record_id, random_string
from ..core.types import AuthInfo, RequestInfo
from ..security.egress import Egress, EgressError
from ..store.audit import AuditEntry, AuditLog
from ..store.collections import CollectionStore
from ..store.db import Database
from ..store.models import Collection
from ..store.record_input import row_values
from ..store.records import RecordService
from .auth_rule import check_auth_rule
from .oauth2_providers import AuthUser, Provider, ProviderError, init_provider

log = logging.getLogger("keepbase.auth")

DISABLED = "The collection is not configured to allow OAuth2 authentication."
LOAD_ERROR = "An error occurred while loading the submitted data."
TOKEN_FAILED = "Failed to fetch OAuth2 token."
USER_FAILED = "Failed to fetch OAuth2 user."
FAILED = "Failed to authenticate."
HTTP_TIMEOUT = 30.0
AVATAR_TIMEOUT = 15.0
AVATAR_MAX_SIZE = 5 << 20
DISCOVERY_TTL = 3600.0
_SU = RequestInfo(auth=AuthInfo("pbc_3142635823", "_superusers", {"id": ""}), context="oauth2")


class _Session(OAuth2Session):  # type: ignore[misc]
    """authlib's requests session with a timeout on every call (provider and user-info requests)."""

    def request(self, method: str, url: str, withhold_token: bool = False, auth: Any = None,
                **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().request(method, url, withhold_token, auth, **kwargs)


class OAuth2Service:
    def __init__(self, db: Database, collections: CollectionStore, records: RecordService, audit: AuditLog,
                 new_upload: Callable[[str, bytes], Any]) -> None:
        """``new_upload(name, data)`` wraps downloaded bytes as an upload (``UploadedFile.from_bytes``)."""
        self.db = db
        self.new_upload = new_upload
        self.collections = collections
        self.records = records
        self.audit = audit
        self._discovery: dict[str, tuple[float, Any]] = {}
        # the guard for provider-supplied URLs (avatars); tests and operators may replace it
        # with one that has an explicit allow-list
        self.egress = Egress()

    @staticmethod
    def enabled_or_403(c: Collection) -> dict[str, Any]:
        opts: dict[str, Any] = c.options.get("oauth2", {})
        if not opts.get("enabled"):
            raise ForbiddenError(DISABLED)
        return opts

    @staticmethod
    def provider_config(c: Collection, name: str) -> dict[str, Any] | None:
        for config in c.options.get("oauth2", {}).get("providers") or []:
            if isinstance(config, dict) and config.get("name") == name and name:
                return config
        return None

    # --- providers ---
    def _fetch_json(self, url: str) -> Any:
        """A cached GET of a JSON document (OIDC discovery)."""
        hit = self._discovery.get(url)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        res = requests.get(url, timeout=HTTP_TIMEOUT)
        if res.status_code >= 400:
            raise ProviderError(f"failed to fetch {url} ({res.status_code})")
        doc = res.json()
        self._discovery[url] = (time.monotonic() + DISCOVERY_TTL, doc)
        return doc

    def init(self, config: dict[str, Any]) -> Provider:
        provider = init_provider(config)
        provider.prepare(self._fetch_json)
        if not provider.auth_url or not provider.token_url:
            raise ProviderError(f"provider {provider.config_name} has no auth or token URL")
        return provider

    def provider_entries(self, c: Collection) -> list[dict[str, Any]]:
        """``auth-methods``' providers: a fresh state and PKCE pair each, the URL to start with."""
        opts = c.options.get("oauth2", {})
        if not opts.get("enabled"):
            return []
        out = []
        for config in opts.get("providers") or []:
            if not isinstance(config, dict):
                continue
            try:
                provider = self.init(config)
            except Exception as exc:  # skipped, as PocketBase skips providers failing to initialise
                log.debug("skipping OAuth2 provider %r: %s", config.get("name"), exc)
                continue
            state = random_string(30)
            verifier = challenge = method = ""
            params: dict[str, str] = {}
            if provider.pkce:
                verifier = random_string(43)
                challenge, method = create_s256_code_challenge(verifier), "S256"
                params = {"code_challenge": challenge, "code_challenge_method": method}
            url = provider.build_auth_url(state, params) + "&redirect_uri="
            out.append({"name": provider.config_name, "displayName": provider.title, "logo": "", "state": state,
                        "authURL": url, "authUrl": url, "codeVerifier": verifier, "codeChallenge": challenge,
                        "codeChallengeMethod": method})
        return out

    # --- auth-with-oauth2 ---
    def _form(self, c: Collection, body: dict[str, Any]) -> tuple[str, str, str, str, dict[str, Any]]:
        provider, code, verifier = body.get("provider", ""), body.get("code", ""), body.get("codeVerifier", "")
        redirect = body.get("redirectURL") or body.get("redirectUrl") or ""
        create_data = body.get("createData")
        if create_data is None:
            create_data = {}
        if (not all(isinstance(v, str) for v in (provider, code, verifier, redirect))
                or not isinstance(create_data, dict)):
            raise BadRequestError(LOAD_ERROR)
        errors: dict[str, Any] = {}
        if not provider:
            errors["provider"] = REQUIRED
        elif self.provider_config(c, provider) is None:
            errors["provider"] = FieldError("validation_invalid_provider",
                                            f"Provider with name {provider} is missing or is not enabled.",
                                            {"name": provider})
        if not code:
            errors["code"] = REQUIRED
        if not redirect:
            errors["redirectURL"] = REQUIRED
        if errors:
            raise ValidationError(LOAD_ERROR, errors)
        return provider, code, verifier, redirect, create_data

    @staticmethod
    def _client(provider: Provider, redirect: str, auth_method: str) -> _Session:
        return _Session(client_id=provider.client_id, client_secret=provider.client_secret,
                        redirect_uri=redirect, token_endpoint_auth_method=auth_method)

    def fetch_user(self, provider: Provider, code: str, verifier: str, redirect: str) -> AuthUser:
        """Exchange ``code`` (+ PKCE verifier) and fetch the external user."""
        kwargs: dict[str, Any] = {"grant_type": "authorization_code", "code": code}
        if provider.pkce:
            kwargs["code_verifier"] = verifier
        # Go's oauth2 "auto-detect": client credentials in a Basic header, else in the form
        client = self._client(provider, redirect, "client_secret_basic")
        try:
            try:
                token = client.fetch_token(provider.token_url, **kwargs)
            except AuthlibBaseError as exc:
                if getattr(exc, "error", "") != "invalid_client":
                    raise
                client.close()
                client = self._client(provider, redirect, "client_secret_post")
                token = client.fetch_token(provider.token_url, **kwargs)
        except Exception as exc:
            client.close()
            log.info("OAuth2 token exchange with %s failed: %s", provider.config_name, exc)
            raise BadRequestError(TOKEN_FAILED) from exc
        try:
            with client:
                user = provider.fetch_auth_user(client, dict(token))
        except Exception as exc:
            log.info("fetching the OAuth2 user from %s failed: %s", provider.config_name, exc)
            raise BadRequestError(USER_FAILED) from exc
        if not user.id:
            raise BadRequestError(USER_FAILED)
        return user

    def authenticate(self, c: Collection, body: dict[str, Any], info: RequestInfo) -> tuple[dict[str, Any], dict[str, Any]]:
        """(stored record values, response ``meta``) of a successful OAuth2 sign-in."""
        self.enabled_or_403(c)
        name, code, verifier, redirect, create_data = self._form(c, body)
        config = self.provider_config(c, name)
        assert config is not None
        try:
            provider = self.init(config)
        except Exception as exc:
            raise ApiError(500, f"Failed to init provider {name}") from exc
        try:
            user = self.fetch_user(provider, code, verifier, redirect)
            record, is_new = self._sign_in(c, provider, user, create_data, info)
            check_auth_rule(self.db, self.collections, c, record, "oauth2")
        except ApiError as exc:
            self.audit.write(AuditEntry("auth_with_oauth2", c.id, success=False, ip=info.ip,
                                        data={"method": "oauth2", "provider": name, "reason": exc.message}))
            raise
        self.audit.write(AuditEntry("auth_with_oauth2", c.id, str(record["id"]), ip=info.ip,
                                    data={"method": "oauth2", "provider": name, "isNew": is_new}))
        return record, user.meta(is_new)

    def _load(self, c: Collection, **where: Any) -> dict[str, Any] | None:
        table = self.collections.records_table(c)
        with self.db.read() as conn:
            row = conn.execute(select(table).where(*[table.c[k] == v for k, v in where.items()]).limit(1)).first()
        return None if row is None else row_values(c, row)

    def _find_link(self, c: Collection, provider: str, provider_id: str) -> dict[str, Any] | None:
        ext = self.collections.get("_externalAuths")
        return self._load(ext, collectionRef=c.id, provider=provider, providerId=provider_id)

    def _sign_in(self, c: Collection, provider: Provider, user: AuthUser, create_data: dict[str, Any],
                 info: RequestInfo) -> tuple[dict[str, Any], bool]:
        name = provider.config_name
        link = self._find_link(c, name, user.id)
        record: dict[str, Any] | None = None
        if link is not None:
            record = self._load(c, id=link["recordRef"])
            if record is None:
                raise BadRequestError(FAILED)
        elif info.auth is not None and info.auth.collection_id == c.id:
            record = self._load(c, id=info.auth.id)  # link to the signed-in record
        elif user.email and user.email_verified and c.get_field("email") is not None:
            record = self._load(c, email=user.email)
        is_new = record is None
        payload: dict[str, Any] = {}
        if is_new:
            if c.name == "_superusers":
                raise BadRequestError(FAILED)  # superusers never sign up through OAuth2
            payload = self._create_payload(c, provider, user, create_data)
        try:
            with self.db.write():
                if is_new:
                    created = self.records.create_record(c, payload, RequestInfo(
                        auth=info.auth, method="POST", context="oauth2", query=info.query, headers=info.headers,
                        body=payload, ip=info.ip))
                    record = self._load(c, id=created["id"])
                    assert record is not None
                    if (not record.get("verified") and record.get("email", "") == user.email
                            and (user.email_verified or not user.email)):
                        self.records.update_record(c, str(record["id"]), {"verified": True}, _SU)
                else:
                    assert record is not None
                    if link is None and self._is_squatted(c, record, info):
                        self._evict_pre_registration(c, str(record["id"]))
                    self._update_existing(c, record, user, info)
                if link is None:
                    self._link(c, str(record["id"]), name, user.id)
        except ApiError as exc:
            if isinstance(exc, ValidationError) and exc.data:
                raise  # createData errors reach the client, as PocketBase's internal create request
            raise BadRequestError(FAILED) from exc
        except Exception as exc:
            log.warning("OAuth2 sign-in of %s via %s failed: %s", c.name, name, exc)
            raise BadRequestError(FAILED) from exc
        out = self._load(c, id=record["id"])
        if out is None:
            raise BadRequestError(FAILED)
        return out, is_new

    @staticmethod
    def _is_squatted(c: Collection, record: dict[str, Any], info: RequestInfo) -> bool:
        """An unverified record selected by the provider's verified email, not by its own session:
        whoever registered it has not proved the address, the provider's user has."""
        logged_in = info.auth is not None and info.auth.collection_id == c.id and info.auth.id == record["id"]
        return not logged_in and bool(record.get("email")) and not record.get("verified")

    def _evict_pre_registration(self, c: Collection, record_id: str) -> None:
        """Unlink every external identity and drop the MFA sessions of ``record_id`` (the new
        password set by ``_update_existing`` rotates its tokenKey). Runs in the sign-in's
        transaction."""
        ext = self.collections.records_table(self.collections.get("_externalAuths"))
        mfas = self.collections.records_table(self.collections.get("_mfas"))
        with self.db.write() as conn:
            unlinked = conn.execute(delete(ext).where(ext.c.collectionRef == c.id, ext.c.recordRef == record_id))
            conn.execute(delete(mfas).where(mfas.c.collectionRef == c.id, mfas.c.recordRef == record_id))
        log.warning("OAuth2 sign-in with a verified email took over the unverified record %s of %s "
                    "(%d external identities unlinked)", record_id, c.name, unlinked.rowcount)

    def _update_existing(self, c: Collection, record: dict[str, Any], user: AuthUser, info: RequestInfo) -> None:
        body: dict[str, Any] = {}
        email = str(record.get("email") or "")
        logged_in = info.auth is not None and info.auth.collection_id == c.id and info.auth.id == record["id"]
        if not logged_in and email and not record.get("verified"):
            password = random_string(30)
            body.update(password=password, passwordConfirm=password)
        if not email and user.email and user.email_verified:
            body["email"] = email = user.email
        if not record.get("verified") and (not email or (email == user.email and user.email_verified)):
            body["verified"] = True
        if body:
            self.records.update_record(c, str(record["id"]), body, _SU)

    def _link(self, c: Collection, record_id: str, provider: str, provider_id: str) -> None:
        ext = self.collections.get("_externalAuths")
        ts = now_str()
        with self.db.write() as conn:
            conn.execute(insert(self.collections.records_table(ext)).values(
                id=new_record_id(), collectionRef=c.id, recordRef=record_id, provider=provider,
                providerId=provider_id, created=ts, updated=ts))

    def _create_payload(self, c: Collection, provider: Provider, user: AuthUser,
                        create_data: dict[str, Any]) -> dict[str, Any]:
        payload = dict(create_data)
        payload["email"] = user.email  # never the client's choice: the provider's address or none
        if not isinstance(payload.get("password"), str) or not payload.get("password"):
            payload["password"] = payload["passwordConfirm"] = random_string(30)
        mapped = c.options.get("oauth2", {}).get("mappedFields") or {}

        def assign(key: str, value: str) -> None:
            target = str(mapped.get(key) or "")
            if target and target not in payload and c.get_field(target) is not None:
                if key != "username" or (value and self._load(c, **{target: value}) is None):
                    payload[target] = value  # a taken username is left for the user to choose

        assign("id", user.id)
        assign("name", user.name)
        assign("username", user.username)
        target = str(mapped.get("avatarURL") or "")
        f = c.get_field(target) if target else None
        if f is not None and target not in payload and user.avatar_url:
            if f.type == "file":
                avatar = self._download_avatar(user.avatar_url, int(f.options.get("maxSize") or AVATAR_MAX_SIZE))
                if avatar is not None:
                    payload[target] = avatar
            else:
                payload[target] = user.avatar_url
        return payload

    def _download_avatar(self, url: str, limit: int) -> Any:
        """The avatar at ``url`` as an upload, fetched through the egress guard; None if it is
        refused, fails, is not a 200 or is larger than ``limit``."""
        try:
            res = self.egress.get(url, max_bytes=limit, timeout=AVATAR_TIMEOUT)
        except EgressError as exc:  # the sign-in goes on without an avatar, as PocketBase's
            log.warning("failed to retrieve the OAuth2 avatar: %s", exc)
            return None
        if res.status != 200 or not res.content:
            log.warning("failed to retrieve the OAuth2 avatar: status %d", res.status)
            return None
        name = urlsplit(url).path.rsplit("/", 1)[-1] or "avatar"
        return self.new_upload(name, res.content)
