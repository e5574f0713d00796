"""``tuichat demo``: a server, a bot that answers, and the terminal client, in one process.

The server and the bot share one background loop; the TUI runs on the main thread as it would
with ``tuichat connect``. Nothing here is demo-only code: it is the real server, bot and app.
"""

from __future__ import annotations

import os

from tuichat.bot import Bot, BotOptions
from tuichat.client import SessionOptions
from tuichat.client.loop_thread import LoopThread
from tuichat.render import ColorMode, detect_color_mode
from tuichat.server import RoomServer
from tuichat.tui.bridge import MediaOptions

BOT_NAME = "demo-bot"
GREETING = "Hi! I'm a bot on this demo server. Say something and I'll answer; F1 shows every key."


def run_demo(*, user: str = "you", room: str = "demo", port: int | None = None,
             media: MediaOptions | None = None, color_mode: ColorMode | None = None) -> int:
    from tuichat.media import preload_audio
    from tuichat.tui.app import ChatApp

    preload_audio()  # before the UI draws: see tuichat.media._portaudio.preload
    thread = LoopThread("tuichat-demo")
    thread.start()
    server = RoomServer("127.0.0.1", port or 0)  # 0: the OS picks a free port as it binds (no race)
    thread.submit(server.start()).result(timeout=10)
    url = f"ws://127.0.0.1:{server.port}/ws"
    # The bot's JSON lines go nowhere: the terminal belongs to the TUI.
    discard = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    bot = Bot(BotOptions(url=url, name=BOT_NAME, room=room, say=[GREETING], echo=True, read_stdin=False,
                         session=SessionOptions(), camera="test", mic="test"), out=discard)
    bot_run = thread.submit(bot.run())
    try:
        app = ChatApp(url=url, user=user, room=room, media=media or MediaOptions(),
                      color_mode=color_mode or detect_color_mode(os.environ))
        app.run()
    finally:
        thread.loop.call_soon_threadsafe(bot.stop)
        try:
            bot_run.result(timeout=5)
        finally:
            thread.submit(server.stop()).result(timeout=10)
            thread.stop()
            discard.close()
    return app.return_code or 0
