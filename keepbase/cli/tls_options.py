"""The HTTPS options of ``keepbase serve`` and their check; light to import (every command loads it).

``tls_options`` adds the positional domain names and the ``--https``/``--tls-*``/``--acme-*``/
``--hsts-max-age`` options to a click command, which receives them as one ``TlsOptions``;
``plan_https`` checks that they fit together and turns them into an ``HttpsPlan`` for ``tls.HttpsRuntime``.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click

from ..core.config import Config, ConfigError

HSTS_DEFAULT = 15552000  # 180 days
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class AcmeSettings:
    directory: str = LETS_ENCRYPT
    email: str = ""
    ca_bundle: str = ""  # trust these CAs for the directory's HTTPS instead of the system's (a test CA)
    timeout: float = 90.0  # seconds for the CA to validate and issue


def normalize_domain(name: str) -> str:
    """A lower-case DNS name for a certificate; ValueError with a reason otherwise."""
    host = name.strip().lower().rstrip(".")
    if host.startswith("*."):
        raise ValueError(f"{name!r}: wildcard names need the DNS-01 challenge; keepbase answers HTTP-01 only")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValueError(f"{name!r} is an IP address; give the DNS name(s) the server is reached by")
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{name!r} is not a valid domain name (example: keepbase serve example.com)")
    return host


class TlsError(Exception):
    """HTTPS cannot start; the message is one line."""


@dataclass(frozen=True)
class TlsOptions:
    """The HTTPS options as given on the command line (or their ``KEEPBASE_*`` variables)."""

    domains: tuple[str, ...] = ()
    https: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    dev_tls: bool = False
    acme_directory: str = LETS_ENCRYPT
    acme_email: str = ""
    acme_ca_bundle: str = ""
    hsts_max_age: int = HSTS_DEFAULT
    check_interval: float = 60.0


_OPTIONS: list[Callable[[Any], Any]] = [
    click.argument("domains", nargs=-1),
    click.option("--https", default=None, envvar="KEEPBASE_HTTPS",
                 help="HOST:PORT for HTTPS (KEEPBASE_HTTPS). Default 0.0.0.0:443 with domain names, "
                      "127.0.0.1:8443 with --tls-cert or --dev-tls. With HTTPS on, --http is the plain-HTTP "
                      "listener (ACME challenges, redirect to HTTPS): 0.0.0.0:80 by default with domain names."),
    click.option("--tls-cert", default=None, envvar="KEEPBASE_TLS_CERT",
                 help="Certificate chain (PEM) for HTTPS, instead of ACME (KEEPBASE_TLS_CERT)."),
    click.option("--tls-key", default=None, envvar="KEEPBASE_TLS_KEY",
                 help="Private key (PEM) of --tls-cert (KEEPBASE_TLS_KEY)."),
    click.option("--dev-tls", is_flag=True, default=False, envvar="KEEPBASE_DEV_TLS",
                 help="HTTPS with a self-signed certificate kept in the data folder, for development."),
    click.option("--acme-directory", default=LETS_ENCRYPT, envvar="KEEPBASE_ACME_DIRECTORY", show_default=True,
                 help="ACME directory URL the certificates come from (KEEPBASE_ACME_DIRECTORY)."),
    click.option("--acme-email", default="", envvar="KEEPBASE_ACME_EMAIL",
                 help="Contact e-mail of the ACME account: expiry and policy notices (KEEPBASE_ACME_EMAIL)."),
    click.option("--acme-ca-bundle", default="", envvar="KEEPBASE_ACME_CA_BUNDLE",
                 help="CA certificates (PEM) trusted for the ACME directory's HTTPS only, e.g. a test CA "
                      "(KEEPBASE_ACME_CA_BUNDLE). Default: the system's (or REQUESTS_CA_BUNDLE)."),
    click.option("--hsts-max-age", type=click.IntRange(min=0), default=HSTS_DEFAULT, envvar="KEEPBASE_HSTS_MAX_AGE",
                 show_default=True, help="Strict-Transport-Security max-age on HTTPS responses; 0 sends none."),
    click.option("--tls-check-interval", type=click.FloatRange(min=0.1), default=60.0, hidden=True,
                 envvar="KEEPBASE_TLS_CHECK_INTERVAL",
                 help="Seconds between looks at the certificate files and the renewal date."),
]


def tls_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the HTTPS arguments and options to a click command; it receives them as ``tls: TlsOptions``."""

    @functools.wraps(fn)
    def command(*args: Any, domains: tuple[str, ...], https: str | None, tls_cert: str | None,
                tls_key: str | None, dev_tls: bool, acme_directory: str, acme_email: str, acme_ca_bundle: str,
                hsts_max_age: int, tls_check_interval: float, **kwargs: Any) -> Any:
        tls = TlsOptions(domains, https, tls_cert, tls_key, dev_tls, acme_directory, acme_email, acme_ca_bundle,
                         hsts_max_age, tls_check_interval)
        return fn(*args, tls=tls, **kwargs)

    wrapped: Callable[..., Any] = command
    for option in reversed(_OPTIONS):
        wrapped = option(wrapped)
    return wrapped


@dataclass(frozen=True)
class HttpsPlan:
    """What ``serve`` runs for HTTPS, checked."""

    mode: Literal["acme", "files", "dev"]
    https_port: int
    http_address: tuple[str, int] | None  # the plain-HTTP listener (challenges, redirect)
    domains: tuple[str, ...] = ()
    cert_file: str = ""
    key_file: str = ""
    acme: AcmeSettings = AcmeSettings()
    hsts_max_age: int = HSTS_DEFAULT
    check_interval: float = 60.0  # seconds between looks at the certificate files and the renewal date


def _split(address: str, option: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{option}: expected HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port)


def plan_https(cfg: Config, tls: TlsOptions, http_given: bool) -> tuple[Config, HttpsPlan | None]:
    """The Config whose ``http`` is the main (HTTPS) listener, and the plan; ConfigError when the options
    do not fit together. HTTP_GIVEN: --http (or KEEPBASE_HTTP) was set, so a plain listener runs there."""
    http_given = http_given or bool(os.environ.get("KEEPBASE_HTTP"))
    modes = [m for m, on in (("domain names", bool(tls.domains)), ("--tls-cert/--tls-key", bool(
        tls.tls_cert or tls.tls_key)), ("--dev-tls", tls.dev_tls)) if on]
    if not modes:
        if tls.https:
            raise ConfigError("--https needs domain names (certificates over ACME), --tls-cert and --tls-key, "
                              "or --dev-tls")
        return cfg, None
    if len(modes) > 1:
        raise ConfigError(f"choose one source of certificates, not {' and '.join(modes)}")
    if bool(tls.tls_cert) != bool(tls.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    default_https = "0.0.0.0:443" if tls.domains else "127.0.0.1:8443"
    https_address = tls.https or default_https
    _, https_port = _split(https_address, "--https")
    plain = _split(cfg.http, "--http") if http_given else (("0.0.0.0", 80) if tls.domains else None)
    if plain is not None and plain[1] == https_port:
        raise ConfigError(f"--http and --https both use port {https_port}")
    common: dict[str, Any] = {"https_port": https_port, "http_address": plain, "hsts_max_age": tls.hsts_max_age,
                              "check_interval": tls.check_interval}
    if tls.domains:
        try:
            domains = tuple(dict.fromkeys(normalize_domain(d) for d in tls.domains))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        acme = AcmeSettings(tls.acme_directory, tls.acme_email, tls.acme_ca_bundle)
        if tls.acme_ca_bundle and not Path(tls.acme_ca_bundle).is_file():
            raise ConfigError(f"--acme-ca-bundle: no such file {tls.acme_ca_bundle}")
        plan = HttpsPlan("acme", domains=domains, acme=acme, **common)
    elif tls.tls_cert:
        plan = HttpsPlan("files", cert_file=tls.tls_cert, key_file=tls.tls_key or "", **common)
    else:
        plan = HttpsPlan("dev", **common)
    return cfg.with_values(http=https_address), plan


