"""Certificates over ACME (RFC 8555) with the HTTP-01 challenge, through certbot's ``acme`` library.

``obtain_certificate`` registers (or finds) the account of the directory, orders a certificate for the
domains, writes each challenge answer to ``tls/challenges/`` (so that whichever node the CA reaches on
port 80 answers it), tells the CA to validate, and returns the new key with the full chain. The caller
holds the renewal lock. Every failure is an ``AcmeFailure`` whose message is one line for the operator.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import josepy as jose
import requests
from acme import challenges, client, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from .tls_files import TlsFolder, key_pem, make_csr, new_key, write_private
from .tls_options import AcmeSettings

log = logging.getLogger("keepbase.tls")

class AcmeFailure(Exception):
    """The certificate could not be obtained; the message is one line."""


def obtain_certificate(settings: AcmeSettings, folder: TlsFolder, domains: Sequence[str]) -> bytes:
    """Key + full chain (PEM) for DOMAINS; AcmeFailure otherwise."""
    try:
        try:
            return _obtain(settings, folder, domains)
        except messages.Error as exc:
            if exc.code != "accountDoesNotExist":
                raise
            # the CA forgot the account (deactivated, or a test CA restarted): register again, once
            (folder.account_dir(settings.directory) / "account.json").unlink(missing_ok=True)
            return _obtain(settings, folder, domains)
    except errors.ValidationError as exc:
        raise AcmeFailure(f"HTTP-01 challenge failed: {_failed_challenges(exc)}") from exc
    except requests.exceptions.SSLError as exc:
        raise AcmeFailure(f"cannot verify the TLS certificate of the ACME server {settings.directory} "
                          "(trust its CA with --acme-ca-bundle)") from exc
    except requests.exceptions.RequestException as exc:
        raise AcmeFailure(f"cannot reach the ACME server {settings.directory}: {_network_reason(exc)}") from exc
    except errors.TimeoutError as exc:
        raise AcmeFailure(f"the ACME server did not validate and issue within {settings.timeout:.0f} s") from exc
    except messages.Error as exc:
        raise AcmeFailure(f"the ACME server refused: {exc.detail or exc.description or exc.typ}") from exc
    except (errors.Error, jose.errors.Error, ValueError, KeyError) as exc:
        raise AcmeFailure(f"unexpected answer from the ACME server: {_first_line(exc)}") from exc
    except OSError as exc:
        raise AcmeFailure(f"cannot write to {folder.root}: {exc.strerror or exc}") from exc


def _obtain(settings: AcmeSettings, folder: TlsFolder, domains: Sequence[str]) -> bytes:
    acme = _client(settings, folder)
    key = new_key()
    order = acme.new_order(make_csr(key, domains))
    written: list[Path] = []
    try:
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # validated recently: the CA reuses it
            challb = next((c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)), None)
            if challb is None:
                raise AcmeFailure(f"the ACME server offers no HTTP-01 challenge for {authz.body.identifier.value}")
            response, validation = challb.response_and_validation(acme.net.key)
            path = folder.challenges / challb.chall.encode("token")
            write_private(path, validation.encode())
            path.chmod(0o644)
            written.append(path)
            acme.answer_challenge(challb, response)
        deadline = dt.datetime.now() + dt.timedelta(seconds=settings.timeout)
        order = acme.poll_and_finalize(order, deadline)
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    if not order.fullchain_pem:
        raise AcmeFailure("the ACME server returned no certificate")
    return key_pem(key) + order.fullchain_pem.encode()


def _client(settings: AcmeSettings, folder: TlsFolder) -> client.ClientV2:
    account = folder.account_dir(settings.directory)
    key_path, info_path = account / "account.key", account / "account.json"
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise AcmeFailure(f"{key_path} is not an EC key; remove it to register a new account")
    else:
        key = new_key()
        write_private(key_path, key_pem(key))
    # requests takes a CA bundle path where acme's signature says bool; empty means the system's trust
    # (and REQUESTS_CA_BUNDLE, which requests reads when verify is True)
    verify = cast(bool, settings.ca_bundle or True)
    net = client.ClientNetwork(JWKEC(key=key), alg=ES256, verify_ssl=verify, user_agent="keepbase",
                               timeout=30)
    acme = client.ClientV2(client.ClientV2.get_directory(settings.directory, net), net)
    if info_path.exists():
        uri = json.loads(info_path.read_text())["uri"]
        net.account = messages.RegistrationResource(body=messages.Registration(), uri=uri)
        return acme
    new = messages.NewRegistration.from_data(email=settings.email or None, terms_of_service_agreed=True)
    try:
        regr = acme.new_account(new)
    except errors.ConflictError as exc:  # this key already has an account: use it
        regr = messages.RegistrationResource(body=messages.Registration(), uri=exc.location)
        net.account = regr
    write_private(info_path, json.dumps({"uri": regr.uri, "directory": settings.directory}).encode())
    log.info("ACME account registered at %s", settings.directory)
    return acme


def _failed_challenges(exc: errors.ValidationError) -> str:
    parts = []
    for authzr in exc.failed_authzrs:
        name = authzr.body.identifier.value
        details = [c.error.detail or c.error.typ for c in authzr.body.challenges if c.error is not None]
        parts.append(f"{name}: {' / '.join(d for d in details if d) or 'invalid'}")
    return "; ".join(parts) or "the CA found the answer invalid"


def _network_reason(exc: requests.exceptions.RequestException) -> str:
    """"Connection refused" rather than urllib3's retry wrapper around it."""
    text = str(exc)
    errno_text = re.search(r"\[Errno -?\d+\] ([^\]\"')(]+)", text)
    if errno_text:
        return errno_text.group(1).strip()
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
