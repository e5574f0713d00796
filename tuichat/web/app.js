// tuichat in the browser: the room protocol over a WebSocket and one RTCPeerConnection to the server.
//
// The offer has the same fixed layout as the terminal client's (tuichat/server/media.py): our
// sendonly video and sendonly audio, then `media_slots` pairs of recvonly video + audio. Nothing is
// renegotiated: mute, camera-off and devices allowed late use sender.replaceTrack, and `streams`
// events say which participant is on which receive slot. Everything other people send (names,
// messages) goes into the page with textContent or as text nodes, never parsed as HTML. Standard
// APIs only, so it runs in Chromium and Firefox.
"use strict";

(() => {
  const meta = (name) => document.querySelector(`meta[name="tuichat-${name}"]`).content;
  const ROOM = meta("room");
  const ROOT = new URL(meta("root"), location.href);
  const WS_URL = (() => {
    const url = new URL("ws", ROOT);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  })();
  /** The server's limit on a chat message, in characters (code points, as Python counts them). */
  const TEXT_MAX = Number(meta("text-max")) || 2000;

  // Every limit and timeout in one place (milliseconds, pixels).
  const LIMITS = {
    viewMaxWidth: 640, viewMaxHeight: 480, viewMinSide: 16, viewFps: 15,
    commandTimeout: 10000, iceGatherTimeout: 5000, connectTimeout: 15000, socketOpenTimeout: 10000,
    backoffInitial: 250, backoffMax: 8000, restartDelay: 1000, viewDebounce: 300, leaveTimeout: 1000,
    messagesKept: 500, copiedShown: 2000, tileGap: 10,
  };

  /** Where the page is with the room; the title, statuses and tiles follow it. */
  const Phase = Object.freeze({
    OUT: "out",                    // the join form
    JOINING: "joining",            // devices asked for, the join command on its way
    IN: "in",                      // in the room
    RECONNECTING: "reconnecting",  // the connection dropped; what is shown is from before
  });

  /** What the join form's choices and the mute buttons remember across a reload (this tab only). */
  const CHOICES_KEY = "tuichat.devices";

  /** Codes of a refused join that are about the name: the name field is the way forward. */
  const NAME_CODES = new Set(["invalid_name", "name_taken"]);

  const DEVICE_PROBLEMS = {
    insecure: {
      retry: false,
      text: "This address cannot use the camera and microphone: browsers allow them only on https:// " +
        "addresses and on localhost. You can watch and chat, but nobody sees or hears you.",
    },
    denied: {
      retry: true,
      text: "The browser did not allow this page to use your camera and microphone: you can watch and chat, " +
        "but nobody sees or hears you. To allow it, click the camera icon or the padlock beside the address " +
        "and choose Allow, then press Try again.",
    },
    missing: {
      retry: true,
      text: "No camera or microphone was found: you can watch and chat, but nobody sees or hears you. " +
        "Connect one, then press Try again.",
    },
    busy: {
      retry: true,
      text: "The camera and microphone could not be started; another program may be using them. You can " +
        "watch and chat, but nobody sees or hears you. Close the other program, then press Try again.",
    },
    noCamera: {
      retry: true,
      text: "No camera could be used: the others hear you but do not see you. Connect one or close the " +
        "program using it, then press Try again.",
    },
    noMicrophone: {
      retry: true,
      text: "No microphone could be used: the others see you but do not hear you. Connect one or close the " +
        "program using it, then press Try again.",
    },
  };

  const $ = (id) => document.getElementById(id);

  /** An element with a class and text; text always goes in as text. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  class CommandError extends Error {
    constructor(code, reason) { super(reason); this.code = code; }
  }

  // --- the WebSocket: commands with ids, answered by ack or error; reconnects with backoff --------

  class Signal {
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

  // --- state ---------------------------------------------------------------------------------------

  const state = {
    phase: Phase.OUT,
    name: "",
    signal: null,
    me: null,                 // our participant id
    participants: new Map(),  // id → {id, name, stream}
    mediaSlots: 7,
    resume: null,
    publicUrl: meta("base"),
    shown: new Set(),         // "ts:id" of messages already in the log
    local: { stream: null, video: null, audio: null },
    deviceProblem: null,      // one of DEVICE_PROBLEMS while the camera or microphone cannot be used
    micMuted: false,
    camOff: false,
    call: null,               // the current Call
    published: false,
    assignments: new Map(),   // participant id → slot index
    tiles: new Map(),         // participant id (or "self") → tile
    view: null,               // [width, height, fps] last sent
    // Whom the composer sends to: null is everyone (only ever by the person's choice), else
    // {id, name, gone}. Someone who leaves stays chosen, marked gone, and nothing is sent to them;
    // the same name joining again (a new participant id) is followed.
    recipient: null,
  };

  function loadChoices() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(CHOICES_KEY) || "{}");
      state.micMuted = saved.micMuted === true;
      state.camOff = saved.camOff === true;
    } catch {
      // Storage refused (a privacy setting): start unmuted, as without a reload.
    }
  }

  function saveChoices() {
    try {
      sessionStorage.setItem(CHOICES_KEY, JSON.stringify({ micMuted: state.micMuted, camOff: state.camOff }));
    } catch {
      // Storage refused: the choice holds until the page is reloaded.
    }
  }

  // --- the call ------------------------------------------------------------------------------------

  class Call {
    constructor(slots) {
      this.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
      this.closed = false;
      this.ready = false;  // connected and ready to publish
      this.answer = null;
      const { video, audio } = state.local;
      this.video = this.pc.addTransceiver(video && !state.camOff ? video : "video", { direction: "sendonly" });
      this.audio = this.pc.addTransceiver(audio && !state.micMuted ? audio : "audio", { direction: "sendonly" });
      this.slots = [];
      for (let k = 0; k < slots; k++) {
        const v = this.pc.addTransceiver("video", { direction: "recvonly" });
        const a = this.pc.addTransceiver("audio", { direction: "recvonly" });
        this.slots.push({ stream: new MediaStream([v.receiver.track, a.receiver.track]) });
      }
      this.pc.onconnectionstatechange = () => this.onConnectionState();
    }

    async start() {
      await this.pc.setLocalDescription(await this.pc.createOffer());
      await this.gathered();
      if (this.closed) return;
      // The server keeps the view per connection: send it before the offer so slots start right.
      state.view = null;
      await sendView();
      await state.signal.command({ type: "offer", sdp: this.pc.localDescription.sdp });
      if (this.closed) return;
      if (!this.answer) throw new Error("the server acknowledged the offer without an answer");
      await this.pc.setRemoteDescription({ type: "answer", sdp: this.answer });
      await this.connected();
    }

    gathered() {
      // The server takes no trickled candidates: wait until all of ours are in the offer.
      const pc = this.pc;
      return new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        const timer = setTimeout(resolve, LIMITS.iceGatherTimeout);
        pc.addEventListener("icegatheringstatechange", () => {
          if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
        });
      });
    }

    connected() {
      const pc = this.pc;
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pc.connectionState === "connected") { cleanup(); resolve(); }
          else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
            cleanup(); reject(new Error(`the media connection ${pc.connectionState}`));
          }
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error("the media connection did not come up")); },
          LIMITS.connectTimeout);
        const cleanup = () => { clearTimeout(timer); pc.removeEventListener("connectionstatechange", check); };
        pc.addEventListener("connectionstatechange", check);
        check();
      });
    }

    onConnectionState() {
      if (this.closed || state.call !== this) return;
      const s = this.pc.connectionState;
      if (s === "failed") {
        setStatus("call-status", "failed", "media: failed; retrying");
        setTimeout(() => { if (state.call === this && state.phase === Phase.IN) startCall(); }, LIMITS.restartDelay);
      } else if (s === "disconnected") {
        setStatus("call-status", "reconnecting", "media: interrupted");
      } else if (s === "connected") {
        setStatus("call-status", "connected", "media: connected");
      }
    }

    /** Send what the devices and the mute choices say now (no renegotiation: the senders exist). */
    async sendLocal() {
      if (this.closed) return;
      const { video, audio } = state.local;
      await this.video.sender.replaceTrack(video && !state.camOff ? video : null);
      await this.audio.sender.replaceTrack(audio && !state.micMuted ? audio : null);
    }

    close() {
      this.closed = true;
      this.pc.close();
    }
  }

  async function startCall() {
    if (state.call) state.call.close();
    state.published = false;
    renderPublish();
    state.assignments = new Map();
    const call = new Call(state.mediaSlots);
    state.call = call;
    renderTiles();
    setStatus("call-status", "connecting", "media: connecting…");
    try {
      await call.start();
      if (call.closed) return;
      call.ready = true;
      setStatus("call-status", "connected", "media: connected");
      await publish();
    } catch (error) {
      if (call.closed || state.call !== call) return;
      setStatus("call-status", "failed", `media: failed: ${error.message}`);
    }
    renderTiles();
  }

  async function publish() {
    const { audio, video } = state.local;
    if (!audio && !video) { renderPublish(); return; }
    // The mutes go first: the server holds them for the publication, so nobody ever sees a muted
    // microphone as on, not even between two messages.
    if (state.micMuted || state.camOff) {
      await state.signal.command({ type: "mute", audio: state.micMuted, video: state.camOff });
    }
    await state.signal.command({ type: "publish", audio: Boolean(audio), video: Boolean(video) });
    state.published = true;
    renderPublish();
  }

  async function setMic(muted) {
    state.micMuted = muted;
    saveChoices();
    const track = state.local.audio;
    if (track) track.enabled = !muted;
    renderControls();  // at once: the button answers the click, whatever the network does
    renderPublish();
    renderTiles();
    if (state.call) await state.call.sendLocal();
    if (state.published) await state.signal.command({ type: "mute", audio: muted || !track });
  }

  async function setCamera(off) {
    state.camOff = off;
    saveChoices();
    const track = state.local.video;
    if (track) track.enabled = !off;
    renderControls();
    renderPublish();
    renderTiles();
    if (state.call) await state.call.sendLocal();
    if (state.published) await state.signal.command({ type: "mute", video: off || !track });
  }

  /** Ask for pictures the size of a remote tile (in device pixels), at most 640×480. */
  async function sendView() {
    if (!state.signal) return;
    const tile = [...state.tiles.entries()].find(([id]) => id !== "self");
    const box = tile ? tile[1].video.getBoundingClientRect() : { width: 0, height: 0 };
    const ratio = window.devicePixelRatio || 1;
    const fit = (value, max) => {
      const px = Math.round(value * ratio) || max;
      return Math.max(LIMITS.viewMinSide, Math.min(max, px)) & ~1;
    };
    const view = [fit(box.width, LIMITS.viewMaxWidth), fit(box.height, LIMITS.viewMaxHeight), LIMITS.viewFps];
    if (state.view && view.every((v, i) => v === state.view[i])) return;
    state.view = view;
    await state.signal.command({ type: "view", width: view[0], height: view[1], fps: view[2] });
  }

  let viewTimer = null;
  function viewLater() {
    clearTimeout(viewTimer);
    viewTimer = setTimeout(() => { if (state.phase === Phase.IN) sendView().catch(() => {}); }, LIMITS.viewDebounce);
  }

  // --- room events ---------------------------------------------------------------------------------

  function onEvent(message) {
    switch (message.type) {
      case "state": {
        state.me = message.you.id;
        state.resume = message.resume;
        state.mediaSlots = message.media_slots ?? 7;
        if (message.public_url) state.publicUrl = message.public_url;
        state.participants = new Map(message.participants.map((p) => [p.id, p]));
        trackRecipient();
        for (const chat of message.history) addMessage(chat);
        renderInvite();
        renderPeople();
        renderTiles();
        break;
      }
      case "joined":
        state.participants.set(message.participant.id, message.participant);
        trackRecipient();
        addNotice(`${message.participant.name} joined`);
        renderPeople();
        renderTiles();
        break;
      case "left":
        state.participants.delete(message.participant.id);
        trackRecipient();
        addNotice(`${message.participant.name} left${leftBecause(message.reason)}`);
        renderPeople();
        renderTiles();
        break;
      case "published":
      case "unpublished":
      case "updated":
        state.participants.set(message.participant.id, message.participant);
        renderPeople();
        renderTiles();
        break;
      case "message":
        addMessage(message.message);
        break;
      case "answer":
        if (state.call) state.call.answer = message.sdp;
        break;
      case "streams":
        state.assignments = new Map(message.assignments.map((a) => [a.participant, a.slot]));
        renderTiles();
        break;
      default:
        break;
    }
  }

  /** The reason of a LEFT worth showing: "connection lost" adds something, "left" only repeats the verb. */
  function leftBecause(reason) {
    return reason && reason !== "left" ? ` (${reason})` : "";
  }

  /** The composer's recipient after the people changed: gone if they left, followed if their name is back. */
  function trackRecipient() {
    const chosen = state.recipient;
    if (!chosen) return;
    if (state.participants.has(chosen.id)) { chosen.gone = false; return; }
    const back = [...state.participants.values()].find((p) => p.name === chosen.name && p.id !== state.me);
    if (back) {
      chosen.id = back.id;
      chosen.gone = false;
    } else {
      chosen.gone = true;
    }
  }

  /** Send to one participant (by id), or to everyone with null; only ever on the person's own choice. */
  function chooseRecipient(id) {
    const chosen = state.recipient;
    if (chosen && chosen.id === id) return;  // the departed entry picked again: it stays as it is
    const info = id ? state.participants.get(id) : null;
    state.recipient = info && info.id !== state.me ? { id: info.id, name: info.name, gone: false } : null;
    renderPeople();
  }

  function notSent(name) {
    return `Not sent: ${name} has left. Choose someone else, or Everyone, to send it.`;
  }

  async function sendMessage() {
    const input = $("text");
    const text = input.value;
    if (!text.trim() || !state.signal) return;
    if (state.phase === Phase.RECONNECTING) {
      addNotice("Not sent: the connection to the server dropped. Your text is kept; send it again once " +
        "the page has reconnected.", "refused");
      return;
    }
    const chosen = state.recipient;
    // Never fall back to everyone: a private message to someone gone stays in the input.
    if (chosen && chosen.gone) {
      addNotice(notSent(chosen.name), "refused");
      input.focus();
      return;
    }
    try {
      await state.signal.command({ type: "message", text, to: chosen ? chosen.id : null });
      if (input.value === text) {  // not what was typed meanwhile
        input.value = "";
        $("composer-note").textContent = "";
        fitComposer();
      }
    } catch (error) {
      // They left just before it reached the server (their LEFT was still on its way to us).
      const gone = chosen && error instanceof CommandError && error.code === "unknown_participant";
      addNotice(gone ? notSent(chosen.name) : `Not sent: ${error.message}`, "refused");
    }
  }

  // --- joining, losing the server, rejoining, leaving ----------------------------------------------

  /** A refused join in plain words, with the server's reason and what to do about it. */
  function refusal(error) {
    const reason = error.message.replace(/\.+$/, "");
    switch (error.code) {
      case "invalid_name": return `That name can't be used: ${reason}. Choose another name.`;
      case "name_taken": return `That name is taken: ${reason}. Choose another name.`;
      case "room_full": return `The room is full: ${reason}. Try again when someone has left.`;
      case "invalid_room": return `That room name does not work: ${reason}.`;
      default: return `The server refused: ${reason}.`;
    }
  }

  async function joinRoom() {
    const signal = state.signal;
    const join = { type: "join", room: ROOM, name: state.name };
    if (state.resume) join.resume = state.resume;
    await signal.command(join);  // STATE arrives before the ack
    if (state.signal !== signal) return;
    signal.settled();
    const back = state.phase === Phase.RECONNECTING;
    state.phase = Phase.IN;
    setStatus("session-status", "connected", "server: connected");
    if (back) addNotice("Reconnected.");
    renderTitle();
    renderPeople();
    renderPublish();
    startCall();
  }

  async function join(name) {
    if (state.phase !== Phase.OUT) return;
    state.phase = Phase.JOINING;
    state.name = name;
    $("join-button").disabled = true;
    $("join-error").textContent = "";
    $("join-notice").textContent = "";
    const { stream, problem } = await askForDevices();
    useDevices(stream, problem);
    const signal = new Signal(WS_URL, { onEvent, onLost: onConnectionLost, onRetry, onReopen });
    state.signal = signal;
    try {
      setStatus("session-status", "connecting", "server: connecting…");
      await signal.open();
      await joinRoom();
    } catch (error) {
      endCall();
      const refused = error instanceof CommandError;
      showJoinView({
        error: refused ? refusal(error) : `Could not join: ${error.message}.`,
        focus: refused && !NAME_CODES.has(error.code) ? "join-button" : "join-name",
      });
      return;
    }
    const url = new URL(location.href);
    url.searchParams.set("name", name);
    history.replaceState(null, "", url.href);
    $("join-view").hidden = true;
    $("call-view").hidden = false;
    followLog();
    $("statusbar").hidden = false;
    renderDeviceNote();
    renderControls();
    layoutGrid();
    $("text").focus({ preventScroll: true });  // a phone's stacked view stays at the tiles
  }

  /** The connection dropped: say so once, and mark what is shown as from before the drop. */
  function onConnectionLost() {
    if (state.phase !== Phase.IN) return;
    state.phase = Phase.RECONNECTING;
    addNotice("Connection lost; reconnecting…");
    // The media went with the connection; a new call starts once the room has taken us back.
    if (state.call) state.call.close();
    state.published = false;
    setStatus("call-status", "reconnecting", "media: paused until the server is back");
    renderPublish();
    renderPeople();
    renderTiles();
    renderTitle();
  }

  function onRetry(attempt, delay) {
    const seconds = delay < 1000 ? (delay / 1000).toFixed(1) : String(Math.round(delay / 1000));
    const what = attempt === 1 ? "connection lost" : "not reachable";
    setStatus("session-status", "reconnecting", `server: ${what}; trying again in ${seconds} s (attempt ${attempt})`);
  }

  async function onReopen() {
    const signal = state.signal;
    if (!signal) return;
    setStatus("session-status", "connecting", "server: rejoining…");
    try {
      await joinRoom();
    } catch (error) {
      if (state.signal !== signal) return;
      if (error instanceof CommandError) {
        // Refused (after a restart someone else has the name, or the room is full): trying again
        // would not change that, so leave the call and let the person choose.
        endCall();
        showJoinView({ error: `Could not rejoin after the connection dropped. ${refusal(error)}`, focus: "join-name" });
      } else {
        signal.restart();  // the connection is there but the join did not go through: try again
      }
    }
  }

  async function leave() {
    const signal = state.signal;
    state.phase = Phase.OUT;  // a drop while saying goodbye is not an outage
    if (signal && signal.ws && signal.ws.readyState === WebSocket.OPEN) {
      await Promise.race([signal.command({ type: "leave" }).catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, LIMITS.leaveTimeout))]);
    }
    endCall();
    showJoinView({ notice: "You left the room.", focus: "join-button" });
  }

  /** Out of the room: connection, call and devices closed, the room's people and tiles gone. */
  function endCall() {
    if (state.signal) state.signal.close();
    state.signal = null;
    if (state.call) state.call.close();
    state.call = null;
    stopDevices();
    state.phase = Phase.OUT;
    state.resume = null;
    state.published = false;
    state.participants = new Map();
    state.recipient = null;
    state.assignments = new Map();
    state.deviceProblem = null;
    for (const tile of state.tiles.values()) tile.root.remove();
    state.tiles.clear();
    setStatus("session-status", "new", "not connected");
    setStatus("call-status", "new", "media off");
    setStatus("publish-status", "new", "not sending");
    renderPeople();
    renderDeviceNote();
    renderTitle();
  }

  /** The join form, with a refusal (in the error colour) or a notice, and the focus where it helps. */
  function showJoinView({ error = "", notice = "", focus = "join-name" }) {
    $("call-view").hidden = true;
    $("statusbar").hidden = true;
    $("join-view").hidden = false;
    $("join-button").disabled = false;
    $("join-error").textContent = error;
    $("join-notice").textContent = notice;
    $("join-name").value = state.name;
    renderJoinForm();
    renderTitle();
    const target = $(focus);
    target.focus();
    if (focus === "join-name") target.select();
  }

  function onJoinSubmit(event) {
    event.preventDefault();
    const typed = $("join-name").value;
    const name = typed.trim();
    const problem = !typed ? "Type a name to join."
      : !name ? "A name can't be only spaces: type at least one letter, number or sign." : "";
    if (problem) {
      $("join-notice").textContent = "";
      $("join-error").textContent = problem;
      $("join-name").focus();
      return;
    }
    join(name);
  }

  // --- camera and microphone -----------------------------------------------------------------------

  function mediaDevicesUsable() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
  }

  /** The camera and microphone, or as much of them as works, and what stands in the way of the rest. */
  async function askForDevices() {
    if (!mediaDevicesUsable()) return { stream: null, problem: DEVICE_PROBLEMS.insecure };
    const ask = (constraints) => navigator.mediaDevices.getUserMedia(constraints);
    const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } };
    let first;
    try {
      return { stream: await ask({ video, audio: true }), problem: null };
    } catch (error) {
      first = error;
    }
    // A refusal covers both: asking again for each would only be refused again.
    if (first.name === "NotAllowedError" || first.name === "SecurityError") {
      return { stream: null, problem: DEVICE_PROBLEMS.denied };
    }
    // One may work alone (a laptop without a microphone, a camera in use elsewhere).
    const audioOnly = await ask({ audio: true }).catch(() => null);
    if (audioOnly) return { stream: audioOnly, problem: DEVICE_PROBLEMS.noCamera };
    const videoOnly = await ask({ video }).catch(() => null);
    if (videoOnly) return { stream: videoOnly, problem: DEVICE_PROBLEMS.noMicrophone };
    if (first.name === "NotFoundError" || first.name === "OverconstrainedError") {
      return { stream: null, problem: DEVICE_PROBLEMS.missing };
    }
    if (first.name === "NotReadableError" || first.name === "AbortError") {
      return { stream: null, problem: DEVICE_PROBLEMS.busy };
    }
    return {
      stream: null,
      problem: {
        retry: true,
        text: `The camera and microphone could not be used (${first.message || first.name}): you can watch ` +
          "and chat, but nobody sees or hears you. Press Try again to ask once more.",
      },
    };
  }

  /** Take ``stream`` as our devices (stopping any earlier ones), muted as chosen. */
  function useDevices(stream, problem) {
    if (stream) {
      stopDevices();
      const video = stream.getVideoTracks()[0] || null;
      const audio = stream.getAudioTracks()[0] || null;
      if (video) video.enabled = !state.camOff;
      if (audio) audio.enabled = !state.micMuted;
      state.local = { stream, video, audio };
    }
    state.deviceProblem = problem;
  }

  /** Try again: ask for the devices once more and send them, in the same call and the same room. */
  async function retryDevices() {
    const button = $("device-retry");
    button.disabled = true;
    try {
      const { stream, problem } = await askForDevices();
      if (state.phase === Phase.OUT) {
        if (stream) for (const track of stream.getTracks()) track.stop();
        return;
      }
      useDevices(stream, problem);
      renderDeviceNote();
      renderControls();
      renderPublish();
      renderTiles();
      const call = state.call;
      if (!stream || !call) return;
      await call.sendLocal();
      if (state.phase === Phase.IN && call.ready && state.call === call) await publish();
    } catch (error) {
      addNotice(`Camera and microphone: ${error.message}`, "refused");
    } finally {
      button.disabled = false;
    }
  }

  function stopDevices() {
    if (state.local.stream) for (const track of state.local.stream.getTracks()) track.stop();
    state.local = { stream: null, video: null, audio: null };
  }

  // --- rendering -----------------------------------------------------------------------------------

  function setStatus(id, kind, text) {
    const node = $(id);
    node.dataset.state = kind;
    node.textContent = text;
    node.title = text;
  }

  /** "● room · tuichat" in a call, "(reconnecting) room · tuichat" while the server is away. */
  function renderTitle() {
    const title = `${ROOM} · tuichat`;
    if (state.phase === Phase.RECONNECTING) document.title = `(reconnecting) ${title}`;
    else if (state.phase === Phase.IN) document.title = `● ${title}`;
    else document.title = title;
  }

  /** The join form's device choices, and a button that says what joining will do. */
  function renderJoinForm() {
    const usable = mediaDevicesUsable();
    $("join-insecure").hidden = usable;
    $("join-devices").hidden = !usable;
    $("join-hint").hidden = !usable;
    $("join-cam").checked = !state.camOff;
    $("join-mic").checked = !state.micMuted;
    let label;
    if (!usable) label = "Join to watch and chat";
    else if (state.micMuted && state.camOff) label = "Join muted with camera off";
    else if (state.micMuted) label = "Join muted";
    else if (state.camOff) label = "Join with camera off";
    else label = "Join with camera and microphone";
    $("join-button").textContent = label;
  }

  function renderDeviceNote() {
    const problem = state.phase === Phase.OUT ? null : state.deviceProblem;
    $("device-note").hidden = !problem;
    $("device-note-text").textContent = problem ? problem.text : "";
    $("device-retry").hidden = !(problem && problem.retry);
  }

  function terminalAddress(base) {
    const url = new URL(base);
    const prefix = url.pathname.replace(/\/+$/, "");
    if (prefix) return `${url.protocol === "https:" ? "wss" : "ws"}://${url.host}${prefix}/ws`;
    if (url.protocol === "https:") return `wss://${url.host}`;
    return url.port ? url.host : `${url.host}:80`;
  }

  /** localhost, 127.x.y.z or ::1: an address that means "this computer" wherever it is opened. */
  function isLoopback(hostname) {
    const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
    return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\./.test(host);
  }

  function renderInvite() {
    const link = `${state.publicUrl.replace(/\/+$/, "")}/r/${encodeURIComponent(ROOM)}`;
    $("invite-link").textContent = link;
    $("invite-link").href = link;
    $("invite-local").hidden = !isLoopback(new URL(link).hostname);
    const endOfOptions = ROOM.startsWith("-") ? "-- " : "";
    $("invite-command").textContent =
      `tuichat connect ${shellQuote(terminalAddress(state.publicUrl))} THEIR_NAME ${endOfOptions}${shellQuote(ROOM)}`;
  }

  /** As Python's shlex.quote (the terminal client's invite): safe to paste into a POSIX shell or zsh. */
  function shellQuote(word) {
    if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(word)) return word;
    return `'${word.replaceAll("'", `'"'"'`)}'`;
  }

  /**
   * Copy ``text``: the Clipboard API where the browser offers it (https and localhost only), else
   * the older copy command on a selected text area, which works on plain http:// too.
   */
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch {
        // Refused (no permission): the older way below may still work.
      }
    }
    const returnTo = document.activeElement;
    const area = el("textarea", "offscreen");
    area.value = text;
    area.readOnly = true;
    area.setAttribute("aria-hidden", "true");
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    area.remove();
    if (returnTo && returnTo.focus) returnTo.focus();
    return copied;
  }

  let copiedTimer = null;
  async function copyInvite() {
    const button = $("copy-link");
    const copied = await copyText($("invite-link").href);
    button.textContent = copied ? "Copied" : "Copy failed";
    clearTimeout(copiedTimer);
    copiedTimer = setTimeout(() => { button.textContent = "Copy link"; }, LIMITS.copiedShown);
  }

  function badges(info) {
    const out = [];
    const stream = info.stream;
    if (!stream || (!stream.audio && !stream.video)) out.push("no media");
    else {
      // "no mic" (nothing to send) is not "mic off" (muted): the first cannot be asked to unmute.
      if (!stream.audio) out.push("no mic");
      else if (stream.audio_muted) out.push("mic off");
      if (!stream.video) out.push("no camera");
      else if (stream.video_muted) out.push("camera off");
    }
    return out;
  }

  function renderPeople() {
    const list = $("people");
    const select = $("to");
    const chosen = state.recipient;
    const stale = state.phase === Phase.RECONNECTING;
    list.classList.toggle("stale", stale);
    $("people-stale").hidden = !stale;
    list.replaceChildren();
    const people = [...state.participants.values()];
    for (const info of people) {
      const me = info.id === state.me;
      const item = el("li", me ? "person me" : "person");
      item.dataset.id = info.id;
      // Someone else is a button (Tab reaches it, Enter starts a private message); we are not.
      const body = el(me ? "span" : "button", "person-action");
      body.append(el("span", "person-name", info.name));
      if (me) body.append(el("span", "you", "you"));
      for (const badge of badges(info)) body.append(el("span", "badge", badge));
      if (!me) {
        body.type = "button";
        body.title = `Send ${info.name} a private message`;
        body.addEventListener("click", () => { chooseRecipient(info.id); $("text").focus(); });
      }
      item.append(body);
      list.append(item);
    }
    $("people-count").textContent = String(people.length);
    select.replaceChildren(el("option", "", "Everyone"));
    select.firstChild.value = "";
    for (const info of people) {
      if (info.id === state.me) continue;
      const option = el("option", "", `${info.name} (private)`);
      option.value = info.id;
      select.append(option);
    }
    if (chosen && chosen.gone) {
      const option = el("option", "gone", `${chosen.name} (left)`);
      option.value = chosen.id;
      select.append(option);
    }
    select.value = chosen ? chosen.id : "";
    select.classList.toggle("gone", Boolean(chosen && chosen.gone));
    select.title = !chosen ? "Send to everyone"
      : chosen.gone ? `${chosen.name} has left: nothing is sent to them` : `Send to ${chosen.name} only`;
  }

  function makeTile(id) {
    const root = el("div", "tile");
    root.dataset.id = id;
    root.setAttribute("role", "group");  // named after its person in renderTile
    const video = el("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = id === "self";  // our own sound would echo
    const label = el("div", "tile-label");
    const name = el("span", "tile-name");
    const flags = el("span", "tile-flags");
    label.append(name, flags);
    // The note sits in the space above the label (the tile is a two-row grid), so a long note
    // never covers the name.
    const overlay = el("div", "tile-overlay");
    const note = el("span", "tile-note");
    overlay.append(note);
    root.append(video, overlay, label);
    const tile = { root, video, name, flags, overlay, note, slot: null, playing: false };
    video.addEventListener("playing", () => { tile.playing = true; renderTile(id); });
    video.addEventListener("resize", () => renderTile(id));
    return tile;
  }

  function renderTile(id) {
    const tile = state.tiles.get(id);
    if (!tile) return;
    const info = id === "self" ? state.participants.get(state.me) : state.participants.get(id);
    let note = "";
    let status = "idle";
    if (id === "self") {
      tile.name.textContent = `${state.name} (you)`;
      if (!state.local.video) note = "no camera";
      else if (state.camOff) note = "camera off";
      tile.flags.textContent = !state.local.audio ? "no mic" : state.micMuted ? "mic off" : "";
    } else {
      tile.name.textContent = info ? info.name : id;
      tile.flags.textContent = info ? badges(info).join(" · ") : "";
      const stream = info && info.stream;
      if (state.phase === Phase.RECONNECTING) {
        note = "paused: reconnecting…";
        status = "paused";
      } else if (tile.slot === null) note = stream && stream.video ? "waiting for video…" : "not sharing video";
      else if (stream && !stream.video) note = "no camera";
      else if (stream && stream.video_muted) note = "camera off";
      else if (!tile.playing || !tile.video.videoWidth) note = "connecting video…";
    }
    tile.root.setAttribute("aria-label", tile.name.textContent);
    tile.root.dataset.status = note ? status : "playing";
    tile.note.textContent = note;
    tile.overlay.hidden = !note;
    const size = tile.video.videoWidth ? `${tile.video.videoWidth}×${tile.video.videoHeight}` : "";
    tile.root.title = size;
  }

  function renderTiles() {
    const grid = $("grid");
    const wanted = ["self", ...[...state.participants.keys()].filter((id) => id !== state.me)];
    for (const [id, tile] of state.tiles) {
      if (!wanted.includes(id)) { tile.root.remove(); state.tiles.delete(id); }
    }
    for (const id of wanted) {
      let tile = state.tiles.get(id);
      if (!tile) { tile = makeTile(id); state.tiles.set(id, tile); }
      if (id === "self") {
        const source = state.local.stream && state.local.video ? state.local.stream : null;
        if (tile.video.srcObject !== source) tile.video.srcObject = source;
        tile.root.classList.add("self");
      } else if (state.phase !== Phase.RECONNECTING) {  // meanwhile the last picture stays, marked paused
        const slot = state.assignments.get(id);
        const stream = slot !== undefined && state.call && state.call.slots[slot] ? state.call.slots[slot].stream : null;
        if (tile.video.srcObject !== stream) {
          tile.video.srcObject = stream;
          tile.playing = false;
          if (stream) tile.video.play().catch(() => {});
        }
        tile.slot = stream ? slot : null;
      }
      if (tile.root.parentNode !== grid || grid.lastChild !== tile.root) grid.append(tile.root);
      renderTile(id);
    }
    layoutGrid();
    viewLater();
  }

  /** One column of a narrow window (phones): the view scrolls, the tiles come first. */
  const STACKED = window.matchMedia("(max-width: 800px)");

  /**
   * The tile size (4:3) that fills the stage best for this many tiles; set through CSSOM, not inline
   * CSS. Side by side with the people and messages, the tiles fit the stage; stacked above them (a
   * narrow window, whose view scrolls) they may take up to a screen's height, so two people on a
   * phone get the whole width each, and six get two columns rather than three tiny ones.
   */
  function layoutGrid() {
    const grid = $("grid");
    const count = Math.max(1, state.tiles.size);
    const gap = LIMITS.tileGap;
    // Whole pixels rounded down: clientWidth rounds 717.5 up to 718, and tiles sized for 718 wrap.
    const box = grid.getBoundingClientRect();
    const width = Math.floor(box.width);
    let height = Math.floor(box.height);
    if (STACKED.matches) {
      const view = $("call-view");
      const padding = parseFloat(getComputedStyle(view).paddingTop) + parseFloat(getComputedStyle(view).paddingBottom);
      height = Math.floor(window.innerHeight - $("statusbar").offsetHeight - padding);
    }
    if (!width || !height) return;
    let best = 0;
    for (let cols = 1; cols <= count; cols++) {
      const rows = Math.ceil(count / cols);
      let w = (width - (cols - 1) * gap) / cols;
      if (rows * (w * 3 / 4) + (rows - 1) * gap > height) w = ((height - (rows - 1) * gap) / rows) * 4 / 3;
      best = Math.max(best, Math.floor(w));
    }
    const value = `${best}px`;
    if (grid.style.getPropertyValue("--tile-width") !== value) grid.style.setProperty("--tile-width", value);
  }

  function renderControls() {
    const mic = $("mic");
    const cam = $("cam");
    mic.disabled = !state.local.audio;
    cam.disabled = !state.local.video;
    // Fixed labels, the state in aria-pressed: a screen reader says "Mute mic, pressed", never
    // "Unmute mic, pressed" (which reads as the opposite).
    mic.textContent = "Mute mic";
    cam.textContent = "Camera off";
    mic.setAttribute("aria-pressed", String(state.micMuted));
    cam.setAttribute("aria-pressed", String(state.camOff));
  }

  function renderPublish() {
    const { audio, video } = state.local;
    if (!audio && !video) setStatus("publish-status", "idle", "not sending (no camera or microphone)");
    else if (state.phase === Phase.RECONNECTING) setStatus("publish-status", "reconnecting", "not sending while reconnecting");
    else if (!state.published) setStatus("publish-status", "connecting", "not sending yet");
    else {
      const parts = [];
      if (video) parts.push(state.camOff ? "camera off" : "camera on");
      if (audio) parts.push(state.micMuted ? "mic muted" : "mic on");
      setStatus("publish-status", "connected", `sending: ${parts.join(", ")}`);
    }
  }

  function formatTime(ts) {
    return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // The log follows its newest entry unless the person scrolled up to read (a hidden log, or
  // history arriving before the page is laid out, must not stop it following).
  let logFollows = true;
  let logTop = 0;
  $("messages").addEventListener("scroll", () => {
    // Only a move up (the person reading back) stops following; reaching the end starts it again.
    // Our own scrolls go down, and entries appended meanwhile must not read as the person leaving.
    const log = $("messages");
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    if (atEnd) logFollows = true;
    else if (log.scrollTop < logTop) logFollows = false;
    logTop = log.scrollTop;
  });

  function followLog() {
    const log = $("messages");
    if (logFollows) log.scrollTop = log.scrollHeight;
  }
  // The panel settles its height after the call view is laid out (and on every window resize).
  new ResizeObserver(followLog).observe($("messages"));

  function appendEntry(entry) {
    const log = $("messages");
    log.append(entry);
    while (log.childElementCount > LIMITS.messagesKept) log.firstElementChild.remove();
    followLog();
  }

  /** http(s) addresses in chat; what ends one is decided by trimLinkEnd. */
  const LINK_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;
  const CLOSING = { ")": "(", "]": "[", "}": "{" };

  /** An address without what usually follows it in a sentence: a full stop, a comma, or the ")"
   *  closing a parenthesis opened before the address (one opened inside it stays: ``…/p(1)``). */
  function trimLinkEnd(candidate) {
    const count = (text, char) => text.split(char).length - 1;
    let end = candidate.length;
    while (end > 0) {
      const last = candidate[end - 1];
      const kept = candidate.slice(0, end);
      if (".,:;!?'*".includes(last)) end -= 1;
      else if (CLOSING[last] && count(kept, last) > count(kept, CLOSING[last])) end -= 1;
      else break;
    }
    return candidate.slice(0, end);
  }

  /** The address as the link's target, or null if it is no http(s) URL with a host. */
  function linkTarget(candidate) {
    try {
      const url = new URL(candidate);
      return (url.protocol === "http:" || url.protocol === "https:") && url.hostname ? url.href : null;
    } catch {
      return null;
    }
  }

  /** Chat text as text nodes, with each web address an anchor made from the address alone. */
  function linkify(text) {
    const fragment = document.createDocumentFragment();
    let done = 0;
    for (const match of text.matchAll(LINK_PATTERN)) {
      const candidate = trimLinkEnd(match[0]);
      const target = linkTarget(candidate);
      if (!target) continue;
      if (match.index > done) fragment.append(text.slice(done, match.index));
      const link = el("a", "message-link", candidate);
      link.href = target;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      fragment.append(link);
      done = match.index + candidate.length;
    }
    if (done < text.length) fragment.append(text.slice(done));
    return fragment;
  }

  function addMessage(chat) {
    const key = `${chat.ts}:${chat.id}`;
    if (state.shown.has(key)) return;
    state.shown.add(key);
    const entry = el("li", chat.to ? "message private" : "message");
    const head = el("div", "message-head");
    head.append(el("span", "message-from", chat.from.name));
    if (chat.to) {
      const other = state.participants.get(chat.to);
      const to = chat.to === state.me ? "you" : other ? other.name : "someone who left";
      head.append(el("span", "message-private", `private to ${to}`));
    }
    head.append(el("time", "message-time", formatTime(chat.ts)));
    const body = el("div", "message-text");
    body.append(linkify(chat.text));
    entry.append(head, body);
    appendEntry(entry);
  }

  /** A line from the page itself; kind "refused" marks something the person tried that was not done. */
  function addNotice(text, kind) {
    appendEntry(el("li", kind ? `notice ${kind}` : "notice", text));
  }

  // --- the composer: lines kept, the server's limit counted as it counts ---------------------------

  /** The box as tall as its lines (up to its CSS max-height), back to one line when empty. */
  function fitComposer() {
    const input = $("text");
    input.style.removeProperty("height");
    if (!input.value) return;
    const borders = input.offsetHeight - input.clientHeight;
    input.style.setProperty("height", `${input.scrollHeight + borders}px`);
  }

  /**
   * Cut the text to the server's limit, counted in characters (code points) as the server counts
   * them, not in UTF-16 units as maxlength would (which halves the limit for emoji). What goes is
   * what just came in (the characters before the caret), and the note says how much.
   */
  function keepWithinLimit() {
    const input = $("text");
    const note = $("composer-note");
    const chars = [...input.value];
    const excess = chars.length - TEXT_MAX;
    if (excess <= 0) {
      note.textContent = "";
      return;
    }
    const caret = [...input.value.slice(0, input.selectionEnd)].length;
    const from = Math.max(0, caret - excess);
    const kept = chars.slice(0, from).concat(chars.slice(caret)).slice(0, TEXT_MAX);
    input.value = kept.join("");
    const at = kept.slice(0, from).join("").length;
    input.setSelectionRange(at, at);
    note.textContent = `A message holds at most ${TEXT_MAX} characters: ${excess} ` +
      `${excess === 1 ? "character was" : "characters were"} left out.`;
  }

  function onComposerKey(event) {
    // Enter sends, Shift+Enter is a new line; Enter that ends an input method's composition is neither.
    if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.isComposing) return;
    event.preventDefault();
    sendMessage();
  }

  // --- wiring --------------------------------------------------------------------------------------

  function init() {
    const params = new URLSearchParams(location.search);
    $("join-name").value = params.get("name") || "";
    loadChoices();
    renderJoinForm();
    renderInvite();
    renderTitle();
    $("join-form").addEventListener("submit", onJoinSubmit);
    $("join-mic").addEventListener("change", (event) => {
      state.micMuted = !event.target.checked;
      saveChoices();
      renderJoinForm();
    });
    $("join-cam").addEventListener("change", (event) => {
      state.camOff = !event.target.checked;
      saveChoices();
      renderJoinForm();
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      sendMessage();
    });
    $("text").addEventListener("keydown", onComposerKey);
    $("text").addEventListener("input", () => {
      keepWithinLimit();
      fitComposer();
    });
    $("to").addEventListener("change", (event) => chooseRecipient(event.target.value || null));
    $("mic").addEventListener("click", () => setMic(!state.micMuted).catch((e) => addNotice(e.message)));
    $("cam").addEventListener("click", () => setCamera(!state.camOff).catch((e) => addNotice(e.message)));
    $("leave").addEventListener("click", () => leave());
    $("device-retry").addEventListener("click", () => retryDevices());
    $("copy-link").addEventListener("click", () => copyInvite());
    window.addEventListener("resize", () => { layoutGrid(); viewLater(); });
    new ResizeObserver(() => layoutGrid()).observe($("grid"));
    window.addEventListener("pagehide", () => {
      if (state.signal) state.signal.close();
      if (state.call) state.call.close();
    });
    // For tests and debugging: a read-only look at the state.
    window.tuichat = { state };
  }

  init();
})();
