"""TLS settings for terminal clients: trust a given CA file, or (for tests) skip verification."""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["client_ssl"]


def client_ssl(ca_file: str | Path | None = None, *, insecure: bool = False) -> ssl.SSLContext | bool | None:
    """What ``SessionOptions(ssl=...)`` takes: None (the system's trust store), an SSLContext that also
    trusts ``ca_file`` (PEM), or False with ``insecure`` (no certificate check at all: self-signed test
    servers only). Raises ValueError, naming the file, when ``ca_file`` cannot be read."""
    if insecure:
        return False
    if ca_file is None:
        return None
    try:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot read the CA file {str(ca_file)!r}: {exc.strerror or exc}") from None
    return context
