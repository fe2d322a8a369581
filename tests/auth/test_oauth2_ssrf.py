"""OAuth2 sign-in never makes keepbase fetch an internal URL named by the provider's user info
(the avatar), on both engines. Canaries listen on loopback and must never be hit; the sign-in
itself goes on without the avatar."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from keepbase.app import App
from keepbase.security.egress import Egress
from tests.auth.oidc_provider import OIDCProvider, RunningProvider
from tests.auth.test_oauth2 import enable_oauth2, sign_in
from tests.security.canary import Canary, running_canary
from tests.security.test_egress import loopback_forms


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    with RunningProvider() as provider:
        yield provider


@pytest.fixture
def canary() -> Iterator[Canary]:
    with running_canary() as c:
        yield c


@pytest.fixture
def canary6() -> Iterator[Canary]:
    with running_canary("::1") as c:
        yield c


@pytest.fixture
def allowed() -> Iterator[Canary]:
    """An image host the test's guard allows, standing in for a public CDN."""
    with running_canary() as c:
        yield c


def hostile_avatar_urls(canary: Canary, canary6: Canary, allowed: Canary) -> list[str]:
    inward = f"http://127.0.0.1:{canary.port}/stolen.png"
    return [
        *loopback_forms(canary.port),  # 127.0.0.1 in decimal, octal, hex, short, IPv4-mapped; localhost
        f"http://[::1]:{canary6.port}/a.png",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://10.0.0.1/a.png", "http://192.168.1.1/a.png", "http://[fc00::1]/a.png", "http://0.0.0.0/",
        f"{allowed.origin}/redirect?to={inward}",  # an allowed host bouncing the fetch inward
        f"{allowed.origin}/redirect?to=http://2130706433:{canary.port}/",
        f"{allowed.origin}/redirect?to=http://[::1]:{canary6.port}/",
        "file:///etc/passwd", f"gopher://127.0.0.1:{canary.port}/_GET%20/",
    ]


async def test_hostile_avatar_urls_are_skipped_and_never_fetched(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider, canary: Canary,
        canary6: Canary, allowed: Canary) -> None:
    await enable_oauth2(client, su_headers, idp)
    # the fake provider runs on 127.0.0.1 too: its own port is allowed, as is the "CDN" -
    # which is exactly the case the old "trust the provider's host" rule got wrong
    idp_port = int(urlsplit(idp.base_url).port or 0)
    app.oauth2.egress = Egress(allow=frozenset({("127.0.0.1", idp_port), (allowed.address, allowed.port)}))
    urls = hostile_avatar_urls(canary, canary6, allowed)
    for i, url in enumerate(urls):
        idp.add_user(f"sub-ssrf-{i}", email=f"ssrf{i}@example.com", picture=url)
        r = await sign_in(client, f"sub-ssrf-{i}")
        assert r.status_code == 200, (url, r.text)
        body = r.json()
        assert body["meta"]["avatarURL"] == url and body["meta"]["isNew"] is True
        assert body["record"]["avatar"] == "", url
        assert body["record"]["email"] == f"ssrf{i}@example.com" and body["record"]["verified"] is True
    assert canary.hits == [] and canary6.hits == []
    assert {h.path.split("?")[0] for h in allowed.hits} == {"/redirect"}

    # the control: the same flow does download from an allowed host and from the provider itself,
    # so the canaries would have recorded a fetch had one been made
    idp.add_user("sub-cdn", email="cdn@example.com", picture=f"{allowed.origin}/face.png")
    idp.add_user("sub-idp", email="idp@example.com", picture=f"{idp.base_url}/avatar.png")
    for login in ("sub-cdn", "sub-idp"):
        r = await sign_in(client, login)
        assert r.status_code == 200, r.text
        assert r.json()["record"]["avatar"].endswith(".png")
    assert "/face.png" in [h.path for h in allowed.hits]


async def test_production_default_refuses_the_providers_own_loopback_host(
        app: App, client: httpx.AsyncClient, su_headers: dict[str, str], idp: OIDCProvider) -> None:
    """Without an allow-list nothing on loopback is fetched, not even from the provider's host."""
    await enable_oauth2(client, su_headers, idp)
    assert app.oauth2.egress.allow == frozenset()
    idp.add_user("sub-own", email="own@example.com", picture=f"{idp.base_url}/avatar.png")
    r = await sign_in(client, "sub-own")
    assert r.status_code == 200, r.text
    assert r.json()["record"]["avatar"] == ""
