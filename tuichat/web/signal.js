// The WebSocket to the server: commands with ids, answered by an ack or an error (CommandError),
// events passed on as they come, and reconnecting with exponential backoff when an open connection
// drops. It knows nothing of rooms: what to do on a drop or a reopen is the caller's.

import { LIMITS } from "./config.js";

export class CommandError extends Error {
  constructor(code, reason) { super(reason); this.code = code; }
}

export class Signal {
  /**
   * onLost: an open connection dropped (once per drop, not per failed attempt);
   * onRetry(attempt, delay): the next attempt is scheduled; onReopen: an attempt succeeded.
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
      ws.onclose = () => {
        clearTimeout(timeout);
        if (this.ws !== ws) return;
        this.failPending("the connection to the server was lost");
        if (!opened) reject(new Error("the server is not reachable"));
        else if (!this.closing) {
          this.onLost();
          this.reconnectLater();
        }
      };
    });
  }

  reconnectLater() {
    this.attempt += 1;
    const delay = Math.min(LIMITS.backoffInitial * 2 ** (this.attempt - 1), LIMITS.backoffMax);
    this.onRetry(this.attempt, delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.closing) return;
      try {
        await this.open();
      } catch {
        if (!this.closing) this.reconnectLater();
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
