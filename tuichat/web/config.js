// What the server wrote into the room page (its <meta> tags) and every limit and timeout of the
// page, read once so that no other module looks at the document's head.

const meta = (name) => document.querySelector(`meta[name="tuichat-${name}"]`).content;

export const ROOM = meta("room");
/** The site root as the page reached it, so the page works under a proxy's path prefix. */
const ROOT = new URL(meta("root"), location.href);
export const WS_URL = (() => {
  const url = new URL("ws", ROOT);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
})();
/** The server's idea of its public address; a STATE's public_url replaces it. */
export const BASE_URL = meta("base");
/** The server's limit on a chat message, in characters (code points, as Python counts them). */
export const TEXT_MAX = Number(meta("text-max")) || 2000;
/** The server's limit on a name, counted the same way. */
export const NAME_MAX = Number(meta("name-max")) || 32;

// Every limit and timeout in one place (milliseconds, pixels).
export const LIMITS = {
  viewMaxWidth: 640, viewMaxHeight: 480, viewMinSide: 16, viewFps: 15,
  commandTimeout: 10000, iceGatherTimeout: 5000, connectTimeout: 15000, socketOpenTimeout: 10000,
  backoffInitial: 250, backoffMax: 8000, restartDelay: 1000, viewDebounce: 300, leaveTimeout: 1000,
  messagesKept: 500, copiedShown: 2000, tileGap: 10,
  // Stacked on a small screen, the tiles leave the messages in view below them if they keep this
  // share of the height.
  stackedTilesMin: 0.45,
  // A message the server refused as too fast waits and goes again (as `tuichat bot` does), the wait
  // doubling up to its most; one still refused after the last is given back. At most so many wait.
  slowDownWait: 200, slowDownMaxWait: 2000, slowDownGiveUp: 20000, outboxMax: 100,
  // A mute the server refused is sent again (the latest choice only), the wait doubling; after so
  // many refusals in a row the log says the room has not been told yet.
  muteRetry: 300, muteRetryMax: 3000, muteRefusalsShown: 4,
  // A server at its connection limit (HTTP 503 at the handshake) is tried again: when joining so
  // many times, the wait doubling from the first; the probe that tells "busy" from "not there".
  busyRetryInitial: 1000, busyAttempts: 8, busyProbeTimeout: 3000,
  // A media connection that does not come up (refused offer, no answer, ICE timeout) is set up again,
  // the wait doubling from the first (as the terminal client restarts its call), so many times in all;
  // then the page says it gave up and offers Try again.
  mediaRetryInitial: 500, mediaAttempts: 5,
};
