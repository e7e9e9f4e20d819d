"""HTTPS for the fakes: a throw-away CA (trustme) and a certificate for 127.0.0.1 it signed."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import trustme


@dataclass(frozen=True)
class LoopbackTls:
    """What a fake serves HTTPS with, and the CA a client trusts it by."""

    server_context: ssl.SSLContext
    ca_pem: bytes


def loopback_tls() -> LoopbackTls:
    """A new CA and a server certificate for 127.0.0.1 (an IP SAN, as clients check it)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return LoopbackTls(server_context=context, ca_pem=ca.cert_pem.bytes())
