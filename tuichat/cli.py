"""Command-line entry point: argument parsing only; the work happens in the modules it calls."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from tuichat import __version__
from tuichat.config import LogFileError, default_log_file, setup_logging
from tuichat.protocol.limits import DEFAULT_MAX_PARTICIPANTS, DEFAULT_PORT
from tuichat.protocol.names import name_problem, room_problem

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{value!r}: {problem}")
    return value


def _login_name() -> str:
    """The demo's name for you: your login name ("you (you)" read oddly in the people list), or
    "you" when there is none a room would take."""
    import getpass

    try:
        login = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the password database
        return "you"
    return login if name_problem(login) is None else "you"


def _room(value: str) -> str:
    problem = room_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{value!r}: {problem}")
    return value


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 0 and 65535")
    return port


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _ice_url(*schemes: str) -> Callable[[str], str]:
    """An argparse type: a STUN/TURN URL aiortc can use, else a usage error naming it (aiortc reads
    the URL only when it gathers candidates: a typo surfaced as a failed media connection)."""
    def check(value: str) -> str:
        from tuichat.rtc.ice import check_ice_url

        try:
            return check_ice_url(value, schemes)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return check


class _OnlyOnce(argparse.Action):
    """Stores the value, and refuses a second one: aiortc uses one STUN and one TURN server, and
    ignored the others without a word when the flags were repeatable."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        if getattr(namespace, self.dest):
            raise argparse.ArgumentError(
                self, f"given twice: tuichat's WebRTC (aiortc) uses one STUN and one TURN server, "
                      f"so give {option_string} once")
        setattr(namespace, self.dest, [values])


def _add_ice(parser: argparse.ArgumentParser) -> None:
    ice = parser.add_argument_group("ICE (no STUN or TURN server is used unless given)")
    ice.add_argument("--stun", action=_OnlyOnce, default=[], metavar="URL", type=_ice_url("stun", "stuns"),
                     help="a STUN server, e.g. stun:stun.example.org:3478")
    ice.add_argument("--turn", action=_OnlyOnce, default=[], metavar="URL", type=_ice_url("turn", "turns"),
                     help="a TURN server, e.g. turn:turn.example.org:3478")
    ice.add_argument("--turn-username", default=None, metavar="NAME", help="user name for the TURN server")
    ice.add_argument("--turn-password", default=None, metavar="PASSWORD", help="password for the TURN server")


def _ice_servers(args: argparse.Namespace) -> list[object]:
    from aiortc import RTCIceServer

    servers: list[object] = [RTCIceServer(urls=url) for url in args.stun]
    servers += [RTCIceServer(urls=url, username=args.turn_username, credential=args.turn_password)
                for url in args.turn]
    return servers


def _add_media(parser: argparse.ArgumentParser, *, camera: str, mic: str, speaker: bool = False) -> None:
    media = parser.add_argument_group("media")
    media.add_argument("--camera", default=camera, metavar="SRC",
                       help=f"a camera index or path, 'test' (an animated pattern), a video file, a still "
                            f"image, a named pipe (MPEG-TS, Matroska), or 'none' (default: {camera})")
    media.add_argument("--mic", default=mic, metavar="SRC",
                       help=f"a microphone name or index, 'default', 'test' (a tone), or 'none' (default: {mic})")
    if speaker:
        media.add_argument("--speaker", default="default", metavar="SINK",
                           help="a speaker name or index, 'default', or 'none' (default: default)")


def _add_tls_client(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("TLS (for wss:// and https:// servers)")
    trust = tls.add_mutually_exclusive_group()
    trust.add_argument("--ca-file", type=Path, default=None, metavar="FILE",
                       help="also trust the CA (or self-signed certificate) in this PEM file")
    trust.add_argument("--insecure", action="store_true",
                       help="do not check the server's certificate at all (test servers only)")


def _client_ssl(args: argparse.Namespace, command: str) -> tuple[bool, object]:
    """(ok, what SessionOptions(ssl=...) takes); prints the problem when the CA file is unusable."""
    from tuichat.client.tls import client_ssl

    try:
        return True, client_ssl(args.ca_file, insecure=args.insecure)
    except ValueError as exc:
        print(f"tuichat {command}: {exc}", file=sys.stderr)
        return False, None


def invite_trust_options(args: argparse.Namespace) -> tuple[str, ...]:
    """What the invitee needs to trust the server as we do: the same CA file (by its name: they
    get it from whoever made it), or ``--insecure``."""
    if args.ca_file is not None:
        return ("--ca-file", args.ca_file.name)
    return ("--insecure",) if args.insecure else ()


def _public_url(value: str) -> str:
    from tuichat.server.web import check_public_url

    try:
        return check_public_url(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_common(parser: argparse.ArgumentParser, command: str) -> None:
    where = {"serve": "also log to this file (the log goes to stderr)",
             "devices": "log to this file (-v: the detail goes to stderr too)",
             }.get(command, f"where to log (default: {default_log_file(command)})")
    parser.add_argument("--log-file", type=Path, default=None, metavar="FILE", help=where)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")


def _add_client(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="HOST[:PORT]",
                        help=f"the server: host, host:port, a ws:// or wss:// URL, or a room's browser link "
                             f"(the port by default: {DEFAULT_PORT}; 443 for wss:// and https://, 80 for http://)")
    parser.add_argument("user", metavar="USER", type=_name, help="your name in the room (1-32 characters)")
    parser.add_argument("room", metavar="ROOM", type=_room, help="the room to join; made on first join")


class _Parser(argparse.ArgumentParser):
    """argparse, saying which option it does not know (and the one that was likely meant), and
    hinting at ``--`` when a name or room that starts with '-' was read as an option."""

    _seen: list[str] = []

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._seen = list(sys.argv[1:] if args is None else args)
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and " " in self.prog:
            # A command's parser: report here, with its own usage and options, not the top level's.
            hint = " (a value with spaces needs quotes)" if not extras[0].startswith("-") else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        known = self._option_string_actions
        before = self._seen[:self._seen.index("--")] if "--" in self._seen else self._seen
        unknown = [arg.split("=")[0] for arg in before
                   if arg.startswith("-") and arg != "-" and arg.split("=")[0] not in known]
        if unknown:
            first = unknown[0]
            meant = difflib.get_close_matches(first, [o for o in known if o.startswith("--")], n=1, cutoff=0.7)
            if meant:
                message = f"unknown option {first} (did you mean {meant[0]}?)"
            elif first.startswith("--"):
                message = f"unknown option {first} (see {self.prog} --help)" + (
                    f"; {message}" if "required" in message else "")
            elif "required" in message:
                message += (f" ({first!r} was read as an option: a name or room starting with '-' goes "
                            f"after --, options before it, as in: {self.prog} HOST -- {first} ROOM)")
            else:
                message = f"unknown option {first} (see {self.prog} --help)"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tuichat", description="Video chat in the terminal.")
    parser.add_argument("--version", action="version", version=f"tuichat {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run a room server in the foreground",
                                description="Run a tuichat room server. Ctrl+C stops it.")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    serve.add_argument("--max-participants", type=_positive, default=DEFAULT_MAX_PARTICIPANTS,
                       help=f"people per room (default: {DEFAULT_MAX_PARTICIPANTS})")
    web = serve.add_argument_group("web client and TLS (browsers need https for the camera, except on localhost)")
    web.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                     help="serve HTTPS and WSS with this PEM certificate (chain); needs --tls-key")
    web.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the certificate's PEM private key")
    web.add_argument("--public-url", type=_public_url, default=None, metavar="URL",
                     help="the address people reach this server at, for invite links (e.g. behind a proxy: "
                          "https://chat.example.org); default: the address each client used")
    _add_ice(serve)
    _add_common(serve, "serve")

    connect = commands.add_parser("connect", help="join a room in the terminal client",
                                  description="Open the terminal client and join ROOM as USER.")
    _add_client(connect)
    _add_media(connect, camera="0", mic="default", speaker=True)
    connect.add_argument("--colors", default="auto", choices=["auto", "truecolor", "256", "16", "mono"],
                         help="colours of the video and the interface (default: auto, detected from "
                              "COLORTERM, TERM and NO_COLOR)")
    connect.add_argument("--preview", action="store_true",
                         help="start in low-bandwidth preview mode (F4 toggles it)")
    _add_tls_client(connect)
    _add_ice(connect)
    _add_common(connect, "connect")

    bot = commands.add_parser("bot", help="a headless participant printing room events as JSON lines",
                              description="Join ROOM as USER, print each room event as a JSON line on "
                                          "stdout and send each stdin line as chat. Exits 0 on EOF.")
    _add_client(bot)
    bot.add_argument("--say", action="append", default=[], metavar="TEXT", help="send TEXT after joining "
                     "(repeatable)")
    bot.add_argument("--echo", action="store_true", help="answer every message from others")
    bot.add_argument("--stay", action="store_true", help="ignore stdin and stay until interrupted")
    bot.add_argument("--no-reconnect", action="store_true", help="exit instead of reconnecting after a drop")
    bot.add_argument("--chat-only", action="store_true",
                     help="join without media (no call at all); with --camera none --mic none the bot "
                          "still plays everyone and prints their stream events")
    _add_media(bot, camera="test", mic="test")
    _add_tls_client(bot)
    _add_ice(bot)
    _add_common(bot, "bot")

    demo = commands.add_parser("demo", help="a local server, a chatty bot and the client, in one command",
                               description="Start a server on a free port, a bot that answers, and the "
                                           "terminal client joined to them.")
    demo.add_argument("--user", type=_name, default=_login_name(), help="your name (default: your login name)")
    demo.add_argument("--room", type=_room, default="demo", help="room name (default: demo)")
    _add_media(demo, camera="0", mic="default", speaker=True)
    _add_common(demo, "demo")

    devices = commands.add_parser("devices", help="list cameras and sound devices for --camera, --mic, --speaker",
                                  description="List the cameras and sound devices this machine has, with the "
                                              "numbers and names that --camera, --mic and --speaker take.")
    _add_common(devices, "devices")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"serve": _serve, "connect": _connect, "bot": _bot, "demo": _demo, "devices": _devices}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except LogFileError as exc:
        print(f"tuichat {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _devices(args: argparse.Namespace) -> int:
    setup_logging(args.log_file, verbose=args.verbose, to_stderr=args.verbose)
    from tuichat.media import describe_devices

    print(describe_devices())
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from tuichat.server import RoomServer, ServerLimits, serve_forever
    from tuichat.server.tls import server_ssl_context

    if (args.tls_cert is None) != (args.tls_key is None):
        print("tuichat serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    ssl_context = None
    if args.tls_cert is not None:
        try:
            ssl_context = server_ssl_context(args.tls_cert, args.tls_key)
        except ValueError as exc:  # unusable files are a usage error, as the clients' --ca-file is
            print(f"tuichat serve: {exc}", file=sys.stderr)
            return EXIT_USAGE
    setup_logging(args.log_file, verbose=args.verbose, to_stderr=True)
    server = RoomServer(args.host, args.port, limits=ServerLimits(max_participants=args.max_participants),
                        ice_servers=_ice_servers(args), ssl_context=ssl_context,  # type: ignore[arg-type]
                        public_url=args.public_url)
    try:
        asyncio.run(serve_forever(server))
    except KeyboardInterrupt:
        pass  # the server has said it stopped
    except OSError as exc:
        print(f"tuichat serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _url(args: argparse.Namespace, command: str) -> str | None:
    from tuichat.client import websocket_url

    try:
        return websocket_url(args.address)
    except ValueError as exc:
        print(f"tuichat {command}: error: {exc}", file=sys.stderr)  # argparse's form, like other usage errors
        return None


def _utf8_terminal_output() -> str | None:
    """Draw in UTF-8 whatever the locale says; what to tell the person when it said otherwise.

    Textual reads keys as UTF-8 always, but writes through stderr in the locale's character set: a
    remote machine whose locale is not UTF-8 (QA: LANG=en_US.ISO-8859-1 over SSH) drew every border,
    half block and dot as text like ``\u256d\u2500`` across a screen of garbage, saying nothing.
    The terminal at the other end is almost always UTF-8; if it is not, the note says what to fix.
    """
    import codecs
    import os

    stream = sys.__stderr__
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        if codecs.lookup(encoding).name == "utf-8":
            return None
    except LookupError:
        pass
    streams = (sys.__stderr__, sys.__stdout__, sys.stderr, sys.stdout)
    for out in {id(s): s for s in streams if s is not None}.values():
        with contextlib.suppress(AttributeError, OSError, ValueError):
            out.flush()
            out.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
    source = next((f"{name}={os.environ[name]}" for name in ("PYTHONIOENCODING", "LC_ALL", "LC_CTYPE", "LANG")
                   if os.environ.get(name)), "no locale set")
    return (f"This machine's locale ({source}) is {encoding}, not UTF-8: drawing in UTF-8 all the same. "
            "If lines and blocks show as garbage, set the terminal to UTF-8 (and LANG=C.UTF-8 here).")


def _colour_note(colors: object, environ: Mapping[str, str]) -> str | None:
    """Over SSH, say why the colours are fewer than the terminal may have: COLORTERM, which says a
    terminal has 24-bit colour, is not passed on by ssh (only TERM is), so ``auto`` picked 256 colours
    without a word (QA)."""
    from tuichat.render import ColorMode
    from tuichat.tui.app import over_ssh

    if colors not in (ColorMode.COLOR256, ColorMode.COLOR16) or environ.get("COLORTERM") or not over_ssh(environ):
        return None
    count = "256" if colors is ColorMode.COLOR256 else "16"
    return (f"{count} colours, from TERM={environ.get('TERM', '')}: ssh does not pass COLORTERM on. If your "
            "terminal has 24-bit colour, start with --colors truecolor (or ssh -o SendEnv=COLORTERM, with "
            "AcceptEnv COLORTERM in this server's sshd_config).")


#: Textual's (Rich's) colour system for each ``--colors`` mode.
_TEXTUAL_COLOR_SYSTEMS = {"truecolor": "truecolor", "256": "256", "16": "standard", "mono": "standard"}


def _connect(args: argparse.Namespace) -> int:
    url = _url(args, "connect")
    if url is None:
        return EXIT_USAGE
    ok, ssl_option = _client_ssl(args, "connect")
    if not ok:
        return EXIT_USAGE
    setup_logging(args.log_file or default_log_file("connect"), verbose=args.verbose)
    import os

    from tuichat.render import ColorMode, detect_color_mode

    notices = [note for note in (_utf8_terminal_output(),) if note]
    colors = detect_color_mode(os.environ) if args.colors == "auto" else ColorMode.parse(args.colors)
    # The whole interface in the colours the video uses, not only the video: Textual reads its colour
    # system from the environment when it is imported (its own guess can be 256 colours on a 16-colour
    # terminal, and truecolor under TERM=dumb).
    os.environ.setdefault("TEXTUAL_COLOR_SYSTEM", _TEXTUAL_COLOR_SYSTEMS[colors.value])
    from tuichat.tui.app import ChatApp
    from tuichat.tui.bridge import MediaOptions

    if args.colors == "auto" and (note := _colour_note(colors, os.environ)):
        notices.append(note)
    if args.mic not in ("none", "test") or args.speaker != "none":
        from tuichat.media import preload_audio

        preload_audio()  # before the UI draws: see tuichat.media._portaudio.preload
    media = MediaOptions(camera=args.camera, mic=args.mic, speaker=args.speaker, preview=args.preview,
                         ice_servers=tuple(_ice_servers(args)))
    from tuichat.client import SessionOptions

    app = ChatApp(url=url, user=args.user, room=args.room, media=media, color_mode=colors,
                  session_options=SessionOptions(ssl=ssl_option) if ssl_option is not None else None,  # type: ignore[arg-type]
                  invite_options=invite_trust_options(args), notices=notices)
    app.run()
    if app.exit_message:
        with contextlib.suppress(OSError):  # the terminal may be gone (the reason we stopped)
            print(app.exit_message, file=sys.stderr)
    return app.return_code or EXIT_OK


def _bot(args: argparse.Namespace) -> int:
    from tuichat.bot import BotOptions, run_bot
    from tuichat.client import SessionOptions

    url = _url(args, "bot")
    if url is None:
        return EXIT_USAGE
    ok, ssl_option = _client_ssl(args, "bot")
    if not ok:
        return EXIT_USAGE
    setup_logging(args.log_file or default_log_file("bot"), verbose=args.verbose)
    session = SessionOptions(reconnect=not args.no_reconnect, ssl=ssl_option)  # type: ignore[arg-type]
    options = BotOptions(url=url, name=args.user, room=args.room, say=args.say, echo=args.echo,
                         read_stdin=not args.stay, session=session,
                         media=not args.chat_only,
                         camera=args.camera, mic=args.mic, ice_servers=_ice_servers(args))
    return run_bot(options)


def _demo(args: argparse.Namespace) -> int:
    from tuichat.demo import run_demo
    from tuichat.tui.bridge import MediaOptions

    setup_logging(args.log_file or default_log_file("demo"), verbose=args.verbose)
    _utf8_terminal_output()
    with contextlib.suppress(KeyboardInterrupt):
        return run_demo(user=args.user, room=args.room,
                        media=MediaOptions(camera=args.camera, mic=args.mic, speaker=args.speaker))
    return EXIT_OK
