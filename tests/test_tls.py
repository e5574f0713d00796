"""HTTPS and WSS: a certificate made by the test's own CA; browsers and terminal clients in one call."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import Recorder
from tests.test_web import WebPage, chromium, frames_change, wait_playing
from tuichat.cli import main as cli_main
from tuichat.client import Session
from tuichat.client.call import Call, CallEvent
from tuichat.client.tls import client_ssl
from tuichat.errors import ConnectionFailed
from tuichat.media import AudioDrain, TestPatternTrack, ToneTrack
from tuichat.server import RoomServer
from tuichat.server.tls import server_ssl_context

pytestmark = pytest.mark.timeout(60)


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost (what a LAN setup makes)."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("tuichat test CA")).issuer_name(_name("tuichat test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@pytest.fixture
async def tls_server(tls_files: TlsFiles) -> AsyncIterator[RoomServer]:
    context = server_ssl_context(tls_files.cert, tls_files.key)
    async with RoomServer("127.0.0.1", 0, ssl_context=context) as server:
        yield server


async def test_a_terminal_client_needs_the_ca_and_says_so(tls_server: RoomServer, tls_files: TlsFiles) -> None:
    url = f"wss://127.0.0.1:{tls_server.port}/ws"
    with pytest.raises(ConnectionFailed, match=r"not trusted .*--ca-file.*--insecure") as refused:
        await Session(url, "nobody", reconnect=False).connect()
    # What is wrong, without OpenSSL's wrapping ("[SSL: CERTIFICATE_VERIFY_FAILED] … (_ssl.c:1006)").
    assert "not trusted (unable to get local issuer certificate); pass" in str(refused.value)
    assert refused.value.permanent
    for option in (client_ssl(tls_files.ca), client_ssl(insecure=True)):
        async with Session(url, "alice", ssl=option) as session:
            room = await session.join("lobby")
            assert [p.name for p in room.participants.values()] == ["alice"]
    with pytest.raises(ValueError, match="cannot read the CA file"):
        client_ssl(tls_files.ca.parent / "missing.pem")
    async with aiohttp.ClientSession() as http, \
            http.get(f"https://127.0.0.1:{tls_server.port}/r/lobby", ssl=client_ssl(tls_files.ca)) as response:
        assert response.status == 200 and "Content-Security-Policy" in response.headers


async def test_a_browser_and_a_terminal_client_call_over_https(tls_server: RoomServer, tls_files: TlsFiles) -> None:
    session = Session(f"wss://127.0.0.1:{tls_server.port}/ws", "bot", ssl=client_ssl(tls_files.ca))
    tracks = [TestPatternTrack(640, 480, 15, label="bot"), ToneTrack()]
    drain = AudioDrain()
    call: Call | None = None
    try:
        await session.connect()
        room = await session.join("secure")
        call = Call(room, video=tracks[0], audio=tracks[1], audio_sink=drain, view=(320, 240, 15))
        calls = Recorder()
        for event in CallEvent:
            call.on(event, calls)
        await call.start()
        async with chromium("--ignore-certificate-errors") as browser:
            page = WebPage(await browser.new_page(viewport={"width": 1000, "height": 700}))
            await page.join(f"https://127.0.0.1:{tls_server.port}/r/secure?name=web")
            assert await page.js("window.isSecureContext && location.protocol") == "https:"
            invite = await page.js("document.querySelector('#invite-command').textContent")
            assert invite == f"tuichat connect wss://127.0.0.1:{tls_server.port} THEIR_NAME secure"
            await wait_playing(page, "bot")
            await frames_change(call, drain, "web", (320, 240))
            assert page.errors == []
    finally:
        if call is not None:
            await call.close()
        await drain.stop()
        for track in tracks:
            track.stop()
        await session.disconnect()


async def test_a_certificate_for_another_address_says_so_not_pass_ca_file(tls_files: TlsFiles) -> None:
    """README QA: with --ca-file given, an address the certificate does not list was answered with
    "pass --ca-file"."""
    context = server_ssl_context(tls_files.cert, tls_files.key)
    async with RoomServer("0.0.0.0", 0, ssl_context=context) as server:
        url = f"wss://127.0.0.2:{server.port}/ws"  # loopback, but not an address the certificate lists
        with pytest.raises(ConnectionFailed, match=r"IP address mismatch.*subjectAltName") as refused:
            await Session(url, "nobody", reconnect=False, ssl=client_ssl(tls_files.ca)).connect()
        assert "--ca-file" not in str(refused.value)


async def test_a_socket_that_never_starts_tls_is_closed_like_an_idle_one(tls_files: TlsFiles) -> None:
    """asyncio holds a TLS socket that sends no handshake for 60 s, before aiohttp (and so the idle
    guard) sees it: a trickle of silent sockets used up file descriptors 60 s at a time."""
    from tuichat.server import ServerLimits

    context = server_ssl_context(tls_files.cert, tls_files.key)
    limits = ServerLimits(request_timeout=1.0)
    async with RoomServer("127.0.0.1", 0, ssl_context=context, limits=limits) as server:
        silent, _silent = await asyncio.open_connection("127.0.0.1", server.port)
        half, half_writer = await asyncio.open_connection("127.0.0.1", server.port)
        half_writer.write(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello's first bytes, then nothing
        started = asyncio.get_running_loop().time()
        for reader in (silent, half):
            while await asyncio.wait_for(reader.read(65536), 5):
                pass
        assert asyncio.get_running_loop().time() - started < 3.5
        # A real client still connects and is served.
        async with aiohttp.ClientSession() as http, http.get(
                f"https://127.0.0.1:{server.port}/", ssl=client_ssl(tls_files.ca)) as response:
            assert response.status == 200


async def test_wss_to_a_plain_server_says_it_does_not_speak_tls(url: str) -> None:
    """OpenSSL's errno 1 read as the OS's: "operation not permitted", retried for ever."""
    plain = url.replace("ws://", "wss://")
    with pytest.raises(ConnectionFailed, match=r"the server does not speak TLS \(use ws:// or HOST:PORT\)") as failed:
        await Session(plain, "nobody", reconnect=False).connect()
    assert failed.value.permanent


async def _run_cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "tuichat", *args,
                                                   stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_the_bot_command_names_the_tls_flags(tls_server: RoomServer, tls_files: TlsFiles) -> None:
    address = f"wss://127.0.0.1:{tls_server.port}"
    common = ("--no-reconnect", "--chat-only")
    code, stderr = await _run_cli("bot", address, "b", "room", *common)
    assert code == 1 and "--ca-file" in stderr and "not trusted" in stderr, stderr
    code, stderr = await _run_cli("bot", address, "b", "room", "--ca-file", str(tls_files.ca / "missing"), *common)
    assert code == 2 and "cannot read the CA file" in stderr, stderr
    code, stderr = await _run_cli("bot", address, "b", "room", "--ca-file", str(tls_files.ca), *common)
    assert code == 0, stderr  # stdin is empty: joins, then leaves at EOF
    # Plain ws:// to a TLS server: the likely cause is named.
    code, stderr = await _run_cli("bot", f"ws://127.0.0.1:{tls_server.port}", "b", "room", *common)
    assert code == 1 and "wss://" in stderr, stderr


def test_serve_checks_its_tls_flags(tls_files: TlsFiles, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--tls-cert", str(tls_files.cert)]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    assert cli_main(["serve", "--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.ca)]) == 2
    assert f"{str(tls_files.ca)!r} holds no private key" in capsys.readouterr().err
    # README QA: swapped, they got "[SSL] PEM lib (_ssl.c:3905)".
    assert cli_main(["serve", "--tls-cert", str(tls_files.key), "--tls-key", str(tls_files.cert)]) == 2
    assert ("the certificate and the key are swapped: --tls-cert takes the certificate "
            f"({str(tls_files.cert)!r}), --tls-key the key ({str(tls_files.key)!r})") in capsys.readouterr().err
    other_key = tls_files.ca.parent / "other.key"
    other_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    assert cli_main(["serve", "--tls-cert", str(tls_files.cert), "--tls-key", str(other_key)]) == 2
    # QA: OpenSSL's KEY_VALUES_MISMATCH, in words.
    assert "the key is not the certificate's (they are from different pairs)" in capsys.readouterr().err
    assert cli_main(["serve", "--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.ca.parent)]) == 2
    assert f"cannot read the key file '{tls_files.ca.parent}': it is a directory" in capsys.readouterr().err
    missing = str(tls_files.ca / "missing.pem")
    assert cli_main(["serve", "--tls-cert", missing, "--tls-key", str(tls_files.key)]) == 2
    assert f"cannot read the certificate file '{missing}': no such file" in capsys.readouterr().err
    assert cli_main(["serve", "--tls-cert", str(tls_files.cert), "--tls-key", missing]) == 2
    assert f"cannot read the key file '{missing}': no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["serve", "--public-url", "ftp://x"])
    assert "not an http" in capsys.readouterr().err
