"""TLS: what ``verify=`` means, and a failed certificate check in words."""

from __future__ import annotations

import os
import ssl

import aiohttp

from .errors import InvalidRequestError

__all__ = ["Verify", "describe_tls_failure", "ssl_context"]

_CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")

#: What ``verify=`` takes, as in httpx and the openai SDK: verify with the system's CAs (True), do
#: not verify (False), trust a CA bundle file or directory (a path), or use this ``SSLContext``.
Verify = bool | str | os.PathLike[str] | ssl.SSLContext


def ssl_context(verify: Verify = True) -> ssl.SSLContext | bool:
    """What aiohttp's connector takes for ``verify``; ``True`` honours ``SSL_CERT_FILE`` and
    ``REQUESTS_CA_BUNDLE`` (a company's TLS-inspecting proxy), else the system's CAs."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        return False
    if verify is True:
        bundle = next((os.environ[v] for v in _CA_VARIABLES if os.environ.get(v)), None)
        if bundle is None:
            return True  # aiohttp's default context: the system's CAs
        where = f"${next(v for v in _CA_VARIABLES if os.environ.get(v))}"
    else:
        bundle, where = os.fspath(verify), "verify="
    if not os.path.exists(bundle):
        raise InvalidRequestError(f"the CA bundle {bundle!r} (from {where}) does not exist; give the path of a "
                                  "PEM file or directory of certificates", param="verify")
    try:
        if os.path.isdir(bundle):
            return ssl.create_default_context(capath=bundle)
        return ssl.create_default_context(cafile=bundle)
    except (ssl.SSLError, ValueError) as exc:
        raise InvalidRequestError(f"the CA bundle {bundle!r} (from {where}) holds no usable PEM certificates "
                                  f"({exc.__class__.__name__})", param="verify") from None


def describe_tls_failure(exc: aiohttp.ClientSSLError) -> str:
    """Which certificate check failed, in words (hostname mismatch, unknown CA, expired, ...)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        detail = getattr(cert_error, "verify_message", None) or getattr(cert_error, "reason", None)
        detail = detail or str(cert_error)
        return f"the server's certificate was not accepted: {detail}"
    reason = getattr(getattr(exc, "os_error", None), "reason", None)
    return f"TLS handshake failed ({reason or type(exc).__name__})"
