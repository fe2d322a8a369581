"""OAuth2 providers: PocketBase 0.40's list, and the ones keepbase can sign in with.

``PROVIDERS`` holds the 32 names PocketBase 0.40.6 lists, in its order, with their display names.
The providers keepbase implements (``IMPLEMENTED``) know their endpoints, default scopes, whether
they use PKCE, and how their user info becomes an ``AuthUser``. A configured provider whose name
is listed but not implemented fails to initialise: ``auth-methods`` skips it, as PocketBase skips
providers that fail to initialise.

Emails and trust. ``AuthUser.email_verified`` says whether the provider vouches for the address.
Only a vouched-for address may link an existing account or mark a record verified (see
``auth/oauth2.py``). Providers that PocketBase already blanks when unverified (Google, Apple,
Discord, OIDC) do the same here; Microsoft's ``mail`` is shown but never trusted, because any
Entra tenant admin can set it to any address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import quote_plus, urlencode

import jwt
import orjson

ID_TOKEN_LEEWAY = 300  # seconds, PocketBase's default for id_token timestamps


class ProviderError(Exception):
    """A provider could not be initialised or answered something unusable."""


class HTTP(Protocol):
    """What a provider needs from the HTTP client (an authlib ``OAuth2Client`` holding the token)."""

    def get(self, url: str, **kwargs: Any) -> Any: ...

    def post(self, url: str, **kwargs: Any) -> Any: ...


# name, display name — PocketBase 0.40.6's ``/api/collections/meta/oauth2-providers`` order
PROVIDERS: list[tuple[str, str]] = [
    ("apple", "Apple"), ("google", "Google"), ("microsoft", "Microsoft"), ("yandex", "Yandex"),
    ("facebook", "Facebook"), ("instagram2", "Instagram"), ("github", "GitHub"), ("gitlab", "GitLab"),
    ("bitbucket", "Bitbucket"), ("gitee", "Gitee"), ("gitea", "Gitea"), ("discord", "Discord"),
    ("twitter", "Twitter"), ("kakao", "Kakao"), ("vk", "ВКонтакте"), ("linear", "Linear"),
    ("notion", "Notion"), ("monday", "monday.com"), ("lark", "Lark"), ("box", "Box"),
    ("spotify", "Spotify"), ("trakt", "Trakt"), ("twitch", "Twitch"), ("patreon", "Patreon"),
    ("strava", "Strava"), ("wakatime", "WakaTime"), ("livechat", "LiveChat"), ("mailcow", "mailcow"),
    ("planningcenter", "Planning Center"), ("oidc", "OIDC"), ("oidc2", "OIDC"), ("oidc3", "OIDC"),
]
PROVIDER_NAMES = frozenset(name for name, _ in PROVIDERS)


def truthy(value: Any) -> bool:
    """Go's ``cast.ToBool``: providers send ``email_verified`` as a bool or as a string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true")
    return False


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_expiry(expires_at: Any) -> str:
    """The token expiry as PocketBase's DateTime string ("" when the provider gave none)."""
    if not isinstance(expires_at, int | float) or expires_at <= 0:
        return ""
    dt = datetime.fromtimestamp(float(expires_at), UTC)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass
class AuthUser:
    """The normalised external user (PocketBase's ``auth.AuthUser``)."""

    id: str = ""
    name: str = ""
    username: str = ""
    email: str = ""
    email_verified: bool = False
    avatar_url: str = ""
    raw_user: dict[str, Any] = field(default_factory=dict)
    access_token: str = ""
    refresh_token: str = ""
    expiry: str = ""

    def meta(self, is_new: bool) -> dict[str, Any]:
        """The ``meta`` object of the auth response, keys in PocketBase's order."""
        return {"expiry": self.expiry, "rawUser": self.raw_user, "id": self.id, "name": self.name,
                "username": self.username, "avatarURL": self.avatar_url, "accessToken": self.access_token,
                "refreshToken": self.refresh_token, "email": self.email, "avatarUrl": self.avatar_url,
                "isNew": is_new}


def _json(response: Any, what: str) -> Any:
    if response.status_code >= 400:
        raise ProviderError(f"failed to fetch {what} ({response.status_code})")
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(f"invalid {what} response") from exc


class Provider:
    """One configured provider. Subclasses set the defaults and ``auth_user``."""

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    default_pkce: ClassVar[bool] = True
    default_scopes: ClassVar[list[str]] = []
    default_auth_url: ClassVar[str] = ""
    default_token_url: ClassVar[str] = ""
    default_user_info_url: ClassVar[str] = ""
    extra_auth_params: ClassVar[dict[str, str]] = {}

    def __init__(self, config: dict[str, Any]) -> None:
        self.config_name = str(config.get("name") or self.name)
        self.client_id = str(config.get("clientId") or "")
        self.client_secret = str(config.get("clientSecret") or "")
        self.auth_url = str(config.get("authURL") or self.default_auth_url)
        self.token_url = str(config.get("tokenURL") or self.default_token_url)
        self.user_info_url = str(config.get("userInfoURL") or self.default_user_info_url)
        self.title = str(config.get("displayName") or self.display_name or self.config_name)
        pkce = config.get("pkce")
        self.pkce = self.default_pkce if pkce is None else bool(pkce)
        self.scopes = list(self.default_scopes)
        extra = config.get("extra")
        self.extra: dict[str, Any] = dict(extra) if isinstance(extra, dict) else {}

    def prepare(self, fetch_json: Any) -> None:
        """A hook to complete the configuration over the network (OIDC discovery)."""

    def build_auth_url(self, state: str, params: dict[str, str]) -> str:
        """Go's ``oauth2.Config.AuthCodeURL``: sorted, form-encoded query; PocketBase then appends
        an empty ``redirect_uri`` for the client to complete."""
        values = {"client_id": self.client_id, "response_type": "code"}
        if self.scopes:
            values["scope"] = " ".join(self.scopes)
        if state:
            values["state"] = state
        values.update(self.extra_auth_params)
        values.update(params)
        query = urlencode(sorted(values.items()), quote_via=quote_plus)
        return self.auth_url + ("&" if "?" in self.auth_url else "?") + query

    def fetch_raw_user(self, http: HTTP, token: dict[str, Any]) -> dict[str, Any]:
        data = _json(http.get(self.user_info_url), "OAuth2 user")
        if not isinstance(data, dict):
            raise ProviderError("the user info is not an object")
        return data

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        raise NotImplementedError

    def fetch_auth_user(self, http: HTTP, token: dict[str, Any]) -> AuthUser:
        raw = self.fetch_raw_user(http, token)
        user = self.auth_user(raw, token, http)
        user.raw_user = raw
        user.access_token = _str(token.get("access_token"))
        user.refresh_token = _str(token.get("refresh_token"))
        user.expiry = format_expiry(token.get("expires_at"))
        if not user.email:
            user.email_verified = False
        return user


def verify_id_token(id_token: str, *, client_id: str, jwks: dict[str, Any] | None, issuers: list[str],
                    require_exp: bool = False) -> dict[str, Any]:
    """The claims of an OIDC ``id_token``: audience, timestamps and issuer always checked; the
    signature too whenever a key set is known."""
    if not id_token:
        raise ProviderError("empty id_token")
    options: dict[str, Any] = {"verify_signature": False, "verify_aud": True, "verify_iat": True,
                               "verify_exp": True, "require": ["exp"] if require_exp else []}
    try:
        key: Any = None
        algorithms = None
        if jwks is not None:
            header = jwt.get_unverified_header(id_token)
            kid = header.get("kid")
            keys = [k for k in jwt.PyJWKSet.from_dict(jwks).keys if not kid or k.key_id == kid]
            if not keys:
                raise ProviderError(f"jwk with kid {kid!r} was not found")
            key, algorithms = keys[0], [str(header.get("alg") or "RS256")]
            if algorithms[0].lower() == "none" or algorithms[0].startswith("HS"):
                raise ProviderError("unsupported id_token algorithm")
            options["verify_signature"] = True
        claims = jwt.decode(id_token, key=key, algorithms=algorithms, audience=client_id,
                            options=options, leeway=ID_TOKEN_LEEWAY)  # type: ignore[arg-type]
    except jwt.PyJWTError as exc:
        raise ProviderError(f"invalid id_token: {exc}") from exc
    if issuers and claims.get("iss") not in issuers:
        raise ProviderError("invalid id_token issuer")
    return dict(claims)


class Google(Provider):
    name, display_name = "google", "Google"
    default_scopes = ["https://www.googleapis.com/auth/userinfo.profile",
                      "https://www.googleapis.com/auth/userinfo.email"]
    default_auth_url = "https://accounts.google.com/o/oauth2/v2/auth"
    default_token_url = "https://oauth2.googleapis.com/token"
    default_user_info_url = "https://www.googleapis.com/oauth2/v3/userinfo"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        verified = raw.get("email_verified") is True
        return AuthUser(id=_str(raw.get("sub")), name=_str(raw.get("name")), avatar_url=_str(raw.get("picture")),
                        email=_str(raw.get("email")) if verified else "", email_verified=verified)


class GitHub(Provider):
    name, display_name = "github", "GitHub"
    default_scopes = ["read:user", "user:email"]
    default_auth_url = "https://github.com/login/oauth/authorize"
    default_token_url = "https://github.com/login/oauth/access_token"
    default_user_info_url = "https://api.github.com/user"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        # a public profile email must be verified on GitHub; else ask for the verified primary one
        email = _str(raw.get("email"))
        if not email:
            res = http.get(self.user_info_url + "/emails")
            if res.status_code not in (401, 403, 404):
                emails = _json(res, "GitHub emails")
                for item in emails if isinstance(emails, list) else []:
                    if isinstance(item, dict) and item.get("verified") is True and item.get("primary") is True:
                        email = _str(item.get("email"))
                        break
        return AuthUser(id=_str(raw.get("id")), name=_str(raw.get("name")), username=_str(raw.get("login")),
                        avatar_url=_str(raw.get("avatar_url")), email=email, email_verified=True)


class GitLab(Provider):
    name, display_name = "gitlab", "GitLab"
    default_scopes = ["read_user"]
    default_auth_url = "https://gitlab.com/oauth/authorize"
    default_token_url = "https://gitlab.com/oauth/token"
    default_user_info_url = "https://gitlab.com/api/v4/user"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        # GitLab's primary email is always a confirmed one
        return AuthUser(id=_str(raw.get("id")), name=_str(raw.get("name")), username=_str(raw.get("username")),
                        avatar_url=_str(raw.get("avatar_url")), email=_str(raw.get("email")), email_verified=True)


class Microsoft(Provider):
    name, display_name = "microsoft", "Microsoft"
    default_scopes = ["User.Read"]
    default_auth_url = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize"
    default_token_url = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    default_user_info_url = "https://graph.microsoft.com/v1.0/me"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        # ``mail`` is whatever the tenant says it is ("nOAuth"): shown, never trusted
        return AuthUser(id=_str(raw.get("id")), name=_str(raw.get("displayName")), email=_str(raw.get("mail")),
                        email_verified=False)


class Discord(Provider):
    name, display_name = "discord", "Discord"
    default_scopes = ["identify", "email"]
    default_auth_url = "https://discord.com/api/oauth2/authorize"
    default_token_url = "https://discord.com/api/oauth2/token"
    default_user_info_url = "https://discord.com/api/users/@me"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        uid, username = _str(raw.get("id")), _str(raw.get("username"))
        verified = raw.get("verified") is True
        return AuthUser(id=uid, name=f"{username}#{_str(raw.get('discriminator'))}", username=username,
                        avatar_url=f"https://cdn.discordapp.com/avatars/{uid}/{_str(raw.get('avatar'))}.png",
                        email=_str(raw.get("email")) if verified else "", email_verified=verified)


class Facebook(Provider):
    name, display_name = "facebook", "Facebook"
    default_scopes = ["email"]
    default_auth_url = "https://www.facebook.com/v3.2/dialog/oauth"
    default_token_url = "https://graph.facebook.com/v3.2/oauth/access_token"
    default_user_info_url = "https://graph.facebook.com/me?fields=name,email,picture.type(large)"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        data = _obj(_obj(raw.get("picture")).get("data"))
        # Facebook only hands out confirmed addresses
        return AuthUser(id=_str(raw.get("id")), name=_str(raw.get("name")), email=_str(raw.get("email")),
                        avatar_url=_str(data.get("url")), email_verified=True)


class Yandex(Provider):
    name, display_name = "yandex", "Yandex"
    default_scopes = ["login:email", "login:avatar", "login:info"]
    default_auth_url = "https://oauth.yandex.com/authorize"
    default_token_url = "https://oauth.yandex.com/token"
    default_user_info_url = "https://login.yandex.ru/info"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        user = AuthUser(id=_str(raw.get("id")), name=_str(raw.get("real_name")), username=_str(raw.get("login")),
                        email=_str(raw.get("default_email")), email_verified=True)
        if not raw.get("is_avatar_empty"):
            user.avatar_url = f"https://avatars.yandex.net/get-yapic/{_str(raw.get('default_avatar_id'))}/islands-200"
        return user


class Twitter(Provider):
    name, display_name = "twitter", "Twitter"
    default_scopes = ["users.read", "tweet.read"]
    default_auth_url = "https://twitter.com/i/oauth2/authorize"
    default_token_url = "https://api.twitter.com/2/oauth2/token"
    default_user_info_url = "https://api.twitter.com/2/users/me?user.fields=id,name,username,profile_image_url"

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        data = _obj(raw.get("data"))
        return AuthUser(id=_str(data.get("id")), name=_str(data.get("name")), username=_str(data.get("username")),
                        avatar_url=_str(data.get("profile_image_url")))


class Instagram(Provider):
    name, display_name = "instagram2", "Instagram"
    default_scopes = ["instagram_business_basic"]
    default_auth_url = "https://www.instagram.com/oauth/authorize"
    default_token_url = "https://api.instagram.com/oauth/access_token"
    default_user_info_url = ("https://graph.instagram.com/me?fields=id,username,account_type,user_id,name,"
                             "profile_picture_url,followers_count,follows_count,media_count")

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        return AuthUser(id=_str(raw.get("user_id")), name=_str(raw.get("name")), username=_str(raw.get("username")),
                        avatar_url=_str(raw.get("profile_picture_url")))


class OIDC(Provider):
    """Generic OpenID Connect. User data comes from ``userInfoURL``, or else from the ``id_token``.

    ``extra`` options: ``jwksURL`` and ``issuers`` (as PocketBase), and — a keepbase addition —
    ``discoveryURL``: the provider's ``/.well-known/openid-configuration``, which fills any empty
    authURL, tokenURL, userInfoURL and jwksURL (and the issuer) at sign-in time.
    """

    name, display_name = "oidc", "OIDC"
    default_scopes = ["openid", "email", "profile"]

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.jwks_url = str(self.extra.get("jwksURL") or "")
        issuers = self.extra.get("issuers")
        self.issuers = [str(i) for i in issuers] if isinstance(issuers, list) else []

    def prepare(self, fetch_json: Any) -> None:
        url = str(self.extra.get("discoveryURL") or "")
        if not url:
            return
        doc = fetch_json(url)
        if not isinstance(doc, dict):
            raise ProviderError("invalid OIDC discovery document")
        self.auth_url = self.auth_url or str(doc.get("authorization_endpoint") or "")
        self.token_url = self.token_url or str(doc.get("token_endpoint") or "")
        self.user_info_url = self.user_info_url or str(doc.get("userinfo_endpoint") or "")
        self.jwks_url = self.jwks_url or str(doc.get("jwks_uri") or "")
        if not self.issuers and doc.get("issuer"):
            self.issuers = [str(doc["issuer"])]

    def fetch_raw_user(self, http: HTTP, token: dict[str, Any]) -> dict[str, Any]:
        if self.user_info_url:
            return super().fetch_raw_user(http, token)
        jwks = _json(http.get(self.jwks_url), "jwks") if self.jwks_url else None
        return verify_id_token(_str(token.get("id_token")), client_id=self.client_id, jwks=jwks, issuers=self.issuers)

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        verified = truthy(raw.get("email_verified"))
        return AuthUser(id=_str(raw.get("sub")), name=_str(raw.get("name")),
                        username=_str(raw.get("preferred_username")), avatar_url=_str(raw.get("picture")),
                        email=_str(raw.get("email")) if verified else "", email_verified=verified)


class Apple(Provider):
    """Sign in with Apple: no user-info endpoint, the claims are in the (always verified) id_token."""

    name, display_name = "apple", "Apple"
    default_scopes = ["name", "email"]
    default_auth_url = "https://appleid.apple.com/auth/authorize"
    default_token_url = "https://appleid.apple.com/auth/token"
    extra_auth_params = {"response_mode": "form_post"}
    jwks_url = "https://appleid.apple.com/auth/keys"

    def fetch_raw_user(self, http: HTTP, token: dict[str, Any]) -> dict[str, Any]:
        jwks = _json(http.get(self.jwks_url), "Apple keys")
        claims = verify_id_token(_str(token.get("id_token")), client_id=self.client_id, jwks=jwks,
                                 issuers=["https://appleid.apple.com"], require_exp=True)
        user = token.get("user")  # only on the very first authorisation
        if isinstance(user, str) and user:
            try:
                claims["user"] = orjson.loads(user)
            except ValueError as exc:
                raise ProviderError("invalid Apple user data") from exc
        return claims

    def auth_user(self, raw: dict[str, Any], token: dict[str, Any], http: HTTP) -> AuthUser:
        verified = truthy(raw.get("email_verified"))
        user = AuthUser(id=_str(raw.get("sub")), name=_str(raw.get("name")),
                        email=_str(raw.get("email")) if verified else "", email_verified=verified)
        names = _obj(_obj(raw.get("user")).get("name"))
        if not user.name:
            user.name = f"{_str(names.get('firstName'))} {_str(names.get('lastName'))}".strip()
        return user


IMPLEMENTED: dict[str, type[Provider]] = {
    p.name: p for p in (Google, GitHub, GitLab, Microsoft, Discord, Facebook, Yandex, Twitter, Instagram, Apple)
}
IMPLEMENTED.update({"oidc": OIDC, "oidc2": OIDC, "oidc3": OIDC})


def init_provider(config: dict[str, Any]) -> Provider:
    """A provider from one ``oauth2.providers`` entry of a collection; ProviderError if unusable."""
    name = str(config.get("name") or "")
    cls = IMPLEMENTED.get(name)
    if cls is None:
        raise ProviderError(f"missing provider {name}")
    provider = cls(config)
    provider.config_name = name
    return provider
