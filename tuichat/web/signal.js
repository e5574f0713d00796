// The WebSocket to the server: commands with ids, answered by an ack or an error (CommandError),
// events passed on as they come, and reconnecting with exponential backoff when an open connection
// drops. It knows nothing of rooms: what to do on a drop or a reopen is the caller's. It does say
// why: the reason the server gave when it closed the connection, and "busy" when the server is at
// its connection limit (the WebSocket API hides the handshake's HTTP 503, so a plain request to the
// same address asks).

import { LIMITS } from "./config.js";

export class CommandError extends Error {
  constructor(code, reason) { super(reason); this.code = code; }
}

/** A connection that did not open; `busy`: the server is at its limit, so trying later may work. */
export class OpenError extends Error {
  constructor(message, { busy = false } = {}) { super(message); this.busy = busy; }
}

/** What the server said when it closed an open connection, in words for people; "" if nothing. */
function closeReason(event) {
  const reason = (event.reason || "").trim();
  if (reason === "server shutting down") return "the server is shutting down";
  if (reason === "too slow to read messages") {
    return "the server dropped this page for falling behind with its messages (a slow network or a busy computer)";
  }
  if (reason) return `the server closed it: ${reason}`;
  if (event.code === 1001) return "the server is going away";
  return "";
}

/** Why a WebSocket to `url` did not open: the same address over HTTP answers 503 when the server is busy. */
async function whyNotOpen(url) {
  const http = new URL(url);
  http.protocol = http.protocol === "wss:" ? "https:" : "http:";
  try {
    const response = await fetch(http.href, {
      cache: "no-store", credentials: "omit", signal: AbortSignal.timeout(LIMITS.busyProbeTimeout),
    });
    if (response.status === 503) {
      const said = (await response.text()).trim().replace(/;?\s*try again later\.?$/, "");
      return new OpenError(`the server is busy${said ? ` (${said})` : ""}`, { busy: true });
    }
  } catch {
    // Not reachable over HTTP either.
  }
  return new OpenError("the server is not reachable");
}

export class Signal {
  /**
   * onLost(reason): an open connection dropped (once per drop, not per failed attempt), with what the
   * server said ("" if nothing); onRetry(attempt, delay, failure): the next attempt is scheduled,
   * failure the OpenError of the last one (null after a drop); onReopen: an attempt succeeded.
   */
  constructor(url, { onEvent, onLost, onRetry, onReopen }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onLost = onLost;
    this.onRetry = onRetry;
    this.onReopen = onReopen;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.closing = false;
    this.attempt = 0;
    this.timer = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let opened = false;
      // A socket that neither opens nor fails (a silently dropped SYN) must not stall the retries.
      const timeout = setTimeout(() => ws.close(), LIMITS.socketOpenTimeout);
      ws.onopen = () => { opened = true; clearTimeout(timeout); resolve(); };
      ws.onmessage = (event) => this.dispatch(event.data);
      ws.onclose = (event) => {
        clearTimeout(timeout);
        if (this.ws !== ws) return;
        this.failPending("the connection to the server was lost");
        if (!opened) whyNotOpen(this.url).then(reject);
        else if (!this.closing) {
          this.onLost(closeReason(event));
          this.reconnectLater();
        }
      };
    });
  }

  /** The next attempt after a wait; `failure`: why the last attempt did not open (an OpenError). */
  reconnectLater(failure = null) {
    this.attempt += 1;
    const busy = Boolean(failure && failure.busy);
    const first = busy ? LIMITS.busyRetryInitial : LIMITS.backoffInitial;
    const delay = Math.min(first * 2 ** (this.attempt - 1), LIMITS.backoffMax);
    this.onRetry(this.attempt, delay, failure);
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.closing) return;
      try {
        await this.open();
      } catch (error) {
        if (!this.closing) this.reconnectLater(error);
        return;
      }
      if (!this.closing) this.onReopen();
    }, delay);
  }

  /** Back to the first, shortest delay: called once the room has taken us back. */
  settled() {
    this.attempt = 0;
  }

  /** Drop the connection and try again (an attempt that opened but could not rejoin). */
  restart() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, "retrying");
  }

  dispatch(data) {
    let message;
    try { message = JSON.parse(data); } catch { return; }
    if (message.type === "ack" || (message.type === "error" && message.id != null)) {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.type === "ack") waiter.resolve(message);
      else waiter.reject(new CommandError(message.code, message.reason));
    } else if (message.type === "error") {
      console.warn("server error:", message.code, message.reason);
    } else {
      this.onEvent(message);
    }
  }

  command(body) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error("not connected"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("the server did not answer"));
      }, LIMITS.commandTimeout);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...body, id }));
    });
  }

  failPending(reason) {
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(reason));
    }
    this.pending.clear();
  }

  close() {
    this.closing = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "left");
    this.failPending("closed");
  }
}
