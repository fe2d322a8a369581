"""A real OpenID Connect provider for tests, built from authlib's server components.

It runs on a free local port (uvicorn in a thread) and implements the authorization-code grant
with PKCE (S256, required) and OpenID Connect ID tokens signed with RS256, plus a user-info
endpoint, a JWKS endpoint, the discovery document and an avatar image. ``/authorize`` skips the
login page: the test names the consenting user with ``login=``.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

# a 1x1 PNG
AVATAR_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201e2213fbc0000000049454e44ae426082")


@dataclass
class User:
    sub: str
    name: str = ""
    username: str = ""
    email: str = ""
    email_verified: bool = True
    picture: str = ""


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri.startswith("https://app.example.com/")

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None = None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, headers: dict[str, str], data: dict[str, str],
                 query: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._query = query
        self._form = data if method == "POST" else {}

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class OIDCProvider:
    """The provider's state (clients, users, codes, tokens) and its ASGI app."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.client = Client("kb-client", "kb-secret-" + secrets.token_hex(8))
        self.users: dict[str, User] = {}
        self.codes: dict[str, AuthCode] = {}
        self.tokens: dict[str, tuple[User, str]] = {}
        self.base_url = ""
        self.token_requests = 0
        self.server = self._build_server()
        self.app = Starlette(routes=[
            Route("/authorize", self.authorize, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/userinfo", self.userinfo, methods=["GET"]),
            Route("/jwks", self.jwks, methods=["GET"]),
            Route("/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            Route("/avatar.png", self.avatar, methods=["GET"]),
        ])

    def _build_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> Client | None:
                return provider.client if client_id == provider.client.client_id else None

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                provider.tokens[token["access_token"]] = (request.user, token.get("scope", ""))

            def create_oauth2_request(self, request: Any) -> OAuth2Request:
                return request

            def create_json_request(self, request: Any) -> Any:
                raise NotImplementedError

            def handle_response(self, status: int, body: Any, headers: Any) -> Response:
                hdrs = dict(headers or [])
                if 300 <= status < 400:
                    return RedirectResponse(hdrs["Location"], status_code=status)
                return JSONResponse(body, status_code=status, headers={k: v for k, v in hdrs.items()
                                                                       if k.lower() != "content-type"})

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                pass

        class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                provider.codes[code] = AuthCode(
                    code=code, client_id=request.client.client_id, redirect_uri=data.get("redirect_uri", ""),
                    scope=request.scope or "", user=request.user, code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"), nonce=data.get("nonce"))

            def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
                item = provider.codes.get(code)
                return item if item is not None and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: AuthCode) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: AuthCode) -> User:
                return authorization_code.user

        class IDToken(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return False

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.base_url, "aud": [client.client_id]}

            def get_encode_header(self, client: Client) -> dict[str, Any]:
                return {"alg": "RS256", "kid": "test-key"}

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return UserInfo(provider.claims(user, scope))

        server = Server()
        server.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=lambda **_: secrets.token_urlsafe(24),
            refresh_token_generator=lambda **_: secrets.token_urlsafe(24)))
        server.register_grant(CodeGrant, [CodeChallenge(required=True), IDToken(require_nonce=False)])
        return server

    @staticmethod
    def claims(user: User, scope: str) -> dict[str, Any]:
        out: dict[str, Any] = {"sub": user.sub}
        if "profile" in scope.split():
            out.update(name=user.name, preferred_username=user.username, picture=user.picture)
        if "email" in scope.split():
            out.update(email=user.email, email_verified=user.email_verified)
        return out

    def add_user(self, sub: str, **kwargs: Any) -> User:
        user = User(sub=sub, **kwargs)
        self.users[sub] = user
        return user

    def _request(self, request: Request, data: dict[str, str]) -> StarletteOAuth2Request:
        return StarletteOAuth2Request(request.method, str(request.url), dict(request.headers), data,
                                      dict(request.query_params))

    async def authorize(self, request: Request) -> Response:
        user = self.users.get(request.query_params.get("login", ""))
        req = self._request(request, dict(request.query_params))
        grant = self.server.get_consent_grant(req, end_user=user)
        return self.server.create_authorization_response(req, grant_user=user, grant=grant)  # type: ignore[no-any-return]

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = await request.form()
        req = self._request(request, {k: str(v) for k, v in form.items()})
        return self.server.create_token_response(req)  # type: ignore[no-any-return]

    async def userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        hit = self.tokens.get(token)
        if hit is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(self.claims(*hit))

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def discovery(self, request: Request) -> Response:
        b = self.base_url
        return JSONResponse({"issuer": b, "authorization_endpoint": b + "/authorize", "token_endpoint": b + "/token",
                             "userinfo_endpoint": b + "/userinfo", "jwks_uri": b + "/jwks"})

    async def avatar(self, request: Request) -> Response:
        return Response(AVATAR_PNG, media_type="image/png")


class RunningProvider:
    """``OIDCProvider`` served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self) -> None:
        self.provider = OIDCProvider()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.provider.base_url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.provider.app, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> OIDCProvider:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test OIDC provider did not start")
            time.sleep(0.01)
        return self.provider

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(5)
