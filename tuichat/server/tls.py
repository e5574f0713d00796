"""TLS for ``tuichat serve --tls-cert FILE --tls-key FILE``: HTTPS for the web page and WSS for everyone."""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["server_ssl_context"]


def server_ssl_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A server context from a PEM certificate chain and its key; ValueError naming the file otherwise."""
    for kind, path in (("certificate", cert_file), ("key", key_file)):
        if not Path(path).is_file():  # OpenSSL's own error names no file
            raise ValueError(f"cannot read the {kind} file {str(path)!r}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use the certificate {str(cert_file)!r} with the key {str(key_file)!r}: "
                         f"{getattr(exc, 'reason', None) or exc}") from None
    return context
