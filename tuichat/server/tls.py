"""TLS for ``tuichat serve --tls-cert FILE --tls-key FILE``: HTTPS for the web page and WSS for everyone."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

__all__ = ["server_ssl_context"]


def server_ssl_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A server context from a PEM certificate chain and its key; ValueError naming the file otherwise."""
    for kind, path in (("certificate", cert_file), ("key", key_file)):
        if not Path(path).is_file():  # OpenSSL's own error names no file
            why = "it is a directory" if Path(path).is_dir() else "no such file"
            raise ValueError(f"cannot read the {kind} file {str(path)!r}: {why}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if reason == "KEY_VALUES_MISMATCH":  # OpenSSL's code, in words
            reason = "the key is not the certificate's (they are from different pairs)"
        raise ValueError(_what_is_wrong(Path(cert_file), Path(key_file))
                         or f"cannot use the certificate {str(cert_file)!r} with the key {str(key_file)!r}: "
                            f"{reason}") from None
    return context


def _what_is_wrong(cert_file: Path, key_file: Path) -> str | None:
    """The mistake behind OpenSSL's "PEM lib", from what the files hold: files swapped, or not PEM."""
    cert, key = _pem_blocks(cert_file), _pem_blocks(key_file)
    cert_has_cert, key_has_key = "CERTIFICATE" in cert, any(k.endswith("PRIVATE KEY") for k in key)
    if not cert_has_cert and "CERTIFICATE" in key and any(k.endswith("PRIVATE KEY") for k in cert):
        return (f"the certificate and the key are swapped: --tls-cert takes the certificate ({str(key_file)!r}), "
                f"--tls-key the key ({str(cert_file)!r})")
    if not cert_has_cert:
        return f"{str(cert_file)!r} holds no certificate (a PEM file with BEGIN CERTIFICATE)"
    if not key_has_key and not any(k.endswith("PRIVATE KEY") for k in cert):
        return f"{str(key_file)!r} holds no private key (a PEM file with BEGIN PRIVATE KEY)"
    return None


def _pem_blocks(path: Path) -> set[str]:
    """The kinds of PEM block in a file ("CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY"…)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    return set(re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----", text))
