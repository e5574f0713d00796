// tuichat in the browser: the room protocol over a WebSocket and one RTCPeerConnection to the server.
//
// The offer has the same fixed layout as the terminal client's (tuichat/server/media.py): our
// sendonly video and sendonly audio, then `media_slots` pairs of recvonly video + audio. Nothing is
// renegotiated: mute and camera-off use sender.replaceTrack, and `streams` events say which
// participant is on which receive slot. Everything other people send (names, messages) goes into the
// page with textContent, never as HTML. Standard APIs only, so it runs in Chromium and Firefox.
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

  // Every limit and timeout in one place (milliseconds).
  const LIMITS = {
    viewMaxWidth: 640, viewMaxHeight: 480, viewMinSide: 16, viewFps: 15,
    commandTimeout: 10000, iceGatherTimeout: 5000, connectTimeout: 15000,
    backoffInitial: 250, backoffMax: 8000, restartDelay: 1000, viewDebounce: 300,
    messagesKept: 500,
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
    constructor(url, { onEvent, onStatus, onReopen }) {
      this.url = url;
      this.onEvent = onEvent;
      this.onStatus = onStatus;
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
        ws.onopen = () => { opened = true; this.attempt = 0; this.onStatus("connected", "connected"); resolve(); };
        ws.onmessage = (event) => this.dispatch(event.data);
        ws.onclose = (event) => {
          if (this.ws !== ws) return;
          this.failPending(`connection lost (code ${event.code})`);
          if (!opened) reject(new Error(`cannot reach the server (code ${event.code})`));
          if (!this.closing && opened) this.reconnectLater(`connection lost (code ${event.code})`);
        };
      });
    }

    reconnectLater(reason) {
      this.attempt += 1;
      const delay = Math.min(LIMITS.backoffInitial * 2 ** (this.attempt - 1), LIMITS.backoffMax);
      this.onStatus("reconnecting", `${reason}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`);
      clearTimeout(this.timer);
      this.timer = setTimeout(async () => {
        if (this.closing) return;
        try {
          await this.open();
        } catch (error) {
          this.reconnectLater(error.message);
          return;
        }
        this.onReopen();
      }, delay);
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
    name: "",
    signal: null,
    me: null,                 // our participant id
    participants: new Map(),  // id → {id, name, stream}
    mediaSlots: 7,
    resume: null,
    publicUrl: meta("base"),
    shown: new Set(),         // "ts:id" of messages already in the log
    local: { stream: null, video: null, audio: null },
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

  // --- the call ------------------------------------------------------------------------------------

  class Call {
    constructor(slots) {
      this.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
      this.closed = false;
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
        setTimeout(() => { if (state.call === this) startCall(); }, LIMITS.restartDelay);
      } else if (s === "disconnected") {
        setStatus("call-status", "reconnecting", "media: interrupted");
      } else if (s === "connected") {
        setStatus("call-status", "connected", "media: connected");
      }
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
    await state.signal.command({ type: "publish", audio: Boolean(audio), video: Boolean(video) });
    if (state.micMuted || state.camOff) {
      await state.signal.command({ type: "mute", audio: state.micMuted || !audio, video: state.camOff || !video });
    }
    state.published = true;
    renderPublish();
  }

  async function setMic(muted) {
    state.micMuted = muted;
    const track = state.local.audio;
    if (track) track.enabled = !muted;
    if (state.call) await state.call.audio.sender.replaceTrack(muted ? null : track);
    renderControls();
    renderPublish();
    if (state.published) await state.signal.command({ type: "mute", audio: muted || !track });
  }

  async function setCamera(off) {
    state.camOff = off;
    const track = state.local.video;
    if (track) track.enabled = !off;
    if (state.call) await state.call.video.sender.replaceTrack(off ? null : track);
    renderControls();
    renderPublish();
    renderTiles();
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
    viewTimer = setTimeout(() => { sendView().catch(() => {}); }, LIMITS.viewDebounce);
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
    const chosen = state.recipient;
    // Never fall back to everyone: a private message to someone gone stays in the input.
    if (chosen && chosen.gone) {
      addNotice(notSent(chosen.name), "refused");
      input.focus();
      return;
    }
    try {
      await state.signal.command({ type: "message", text, to: chosen ? chosen.id : null });
      if (input.value === text) input.value = "";  // not what was typed meanwhile
    } catch (error) {
      // They left just before it reached the server (their LEFT was still on its way to us).
      const gone = chosen && error instanceof CommandError && error.code === "unknown_participant";
      addNotice(gone ? notSent(chosen.name) : `Not sent: ${error.message}`, "refused");
    }
  }

  async function joinRoom() {
    const join = { type: "join", room: ROOM, name: state.name };
    if (state.resume) join.resume = state.resume;
    await state.signal.command(join);  // STATE arrives before the ack
    startCall();
  }

  async function onReopen() {
    try {
      await joinRoom();
    } catch (error) {
      setStatus("session-status", "failed", `server: could not rejoin: ${error.message}`);
      addNotice(`Could not rejoin: ${error.message}`);
    }
  }

  async function openDevices() {
    const notes = [];
    const tryGet = async (constraints) => {
      try { return await navigator.mediaDevices.getUserMedia(constraints); } catch (error) {
        notes.push(error.name === "NotAllowedError" ? "permission denied" : error.message || error.name);
        return null;
      }
    };
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return "this page is not on a secure origin (https or localhost): the camera and microphone are off";
    }
    const video = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15 } };
    let stream = await tryGet({ video, audio: true });
    if (!stream) stream = await tryGet({ audio: true }) || await tryGet({ video });
    if (!stream) return `no camera or microphone (${notes.join("; ")})`;
    state.local = { stream, video: stream.getVideoTracks()[0] || null, audio: stream.getAudioTracks()[0] || null };
    return "";
  }

  async function join(name) {
    state.name = name;
    $("join-button").disabled = true;
    $("join-error").textContent = "";
    const deviceNote = await openDevices();
    const signal = new Signal(WS_URL, {
      onEvent,
      onStatus: (kind, detail) => setStatus("session-status", kind, `server: ${detail}`),
      onReopen,
    });
    state.signal = signal;
    try {
      setStatus("session-status", "connecting", "server: connecting…");
      await signal.open();
      await joinRoom();
    } catch (error) {
      signal.close();
      state.signal = null;
      stopDevices();
      $("join-button").disabled = false;
      $("join-error").textContent = error instanceof CommandError ? error.message : `Could not join: ${error.message}`;
      return;
    }
    const url = new URL(location.href);
    url.searchParams.set("name", name);
    history.replaceState(null, "", url.href);
    $("join-view").hidden = true;
    $("call-view").hidden = false;
    followLog();
    $("statusbar").hidden = false;
    if (deviceNote) addNotice(`Camera and microphone: ${deviceNote}.`);
    renderControls();
    $("text").focus();
  }

  async function leave() {
    const signal = state.signal;
    state.signal = null;
    if (signal) {
      await Promise.race([signal.command({ type: "leave" }).catch(() => {}),
        new Promise((resolve) => setTimeout(resolve, 1000))]);
      signal.close();
    }
    if (state.call) state.call.close();
    state.call = null;
    stopDevices();
    state.resume = null;
    state.published = false;
    state.participants = new Map();
    state.recipient = null;
    state.assignments = new Map();
    for (const tile of state.tiles.values()) tile.root.remove();
    state.tiles.clear();
    $("call-view").hidden = true;
    $("statusbar").hidden = true;
    $("join-view").hidden = false;
    $("join-button").disabled = false;
    $("join-error").textContent = "You left the room.";
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

  function terminalAddress(base) {
    const url = new URL(base);
    const prefix = url.pathname.replace(/\/+$/, "");
    if (prefix) return `${url.protocol === "https:" ? "wss" : "ws"}://${url.host}${prefix}/ws`;
    if (url.protocol === "https:") return `wss://${url.host}`;
    return url.port ? url.host : `${url.host}:80`;
  }

  function renderInvite() {
    const link = `${state.publicUrl.replace(/\/+$/, "")}/r/${encodeURIComponent(ROOM)}`;
    $("invite-link").textContent = link;
    $("invite-link").href = link;
    const endOfOptions = ROOM.startsWith("-") ? "-- " : "";
    $("invite-command").textContent =
      `tuichat connect ${shellQuote(terminalAddress(state.publicUrl))} THEIR_NAME ${endOfOptions}${shellQuote(ROOM)}`;
  }

  /** As Python's shlex.quote (the terminal client's invite): safe to paste into a POSIX shell or zsh. */
  function shellQuote(word) {
    if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(word)) return word;
    return `'${word.replaceAll("'", `'"'"'`)}'`;
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
    list.replaceChildren();
    const people = [...state.participants.values()];
    for (const info of people) {
      const item = el("li", info.id === state.me ? "person me" : "person");
      item.dataset.id = info.id;
      item.append(el("span", "person-name", info.name));
      if (info.id === state.me) item.append(el("span", "you", "you"));
      for (const badge of badges(info)) item.append(el("span", "badge", badge));
      if (info.id !== state.me) {
        item.title = `Send ${info.name} a private message`;
        item.addEventListener("click", () => { chooseRecipient(info.id); $("text").focus(); });
      }
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
    const video = el("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = id === "self";  // our own sound would echo
    const label = el("div", "tile-label");
    const name = el("span", "tile-name");
    const flags = el("span", "tile-flags");
    label.append(name, flags);
    const overlay = el("div", "tile-overlay");
    root.append(video, overlay, label);
    const tile = { root, video, name, flags, overlay, slot: null, playing: false };
    video.addEventListener("playing", () => { tile.playing = true; renderTile(id); });
    video.addEventListener("resize", () => renderTile(id));
    return tile;
  }

  function renderTile(id) {
    const tile = state.tiles.get(id);
    if (!tile) return;
    const info = id === "self" ? state.participants.get(state.me) : state.participants.get(id);
    let note = "";
    if (id === "self") {
      tile.name.textContent = `${state.name} (you)`;
      if (!state.local.video) note = "no camera";
      else if (state.camOff) note = "camera off";
      tile.flags.textContent = !state.local.audio ? "no mic" : state.micMuted ? "mic off" : "";
    } else {
      tile.name.textContent = info ? info.name : id;
      tile.flags.textContent = info ? badges(info).join(" · ") : "";
      const stream = info && info.stream;
      if (tile.slot === null) note = stream && stream.video ? "waiting for video…" : "not sharing video";
      else if (stream && !stream.video) note = "no camera";
      else if (stream && stream.video_muted) note = "camera off";
      else if (!tile.playing || !tile.video.videoWidth) note = "connecting video…";
    }
    tile.root.dataset.status = note ? "idle" : "playing";
    tile.overlay.textContent = note;
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
      } else {
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

  /** The tile size (4:3) that fills the stage best for this many tiles; set through CSSOM, not inline CSS. */
  function layoutGrid() {
    const grid = $("grid");
    const count = Math.max(1, state.tiles.size);
    const gap = 10;
    // Whole pixels rounded down: clientWidth rounds 717.5 up to 718, and tiles sized for 718 wrap.
    const box = grid.getBoundingClientRect();
    const width = Math.floor(box.width);
    const height = Math.floor(box.height);
    if (!width || !height) return;
    let best = 0;
    for (let cols = 1; cols <= count; cols++) {
      const rows = Math.ceil(count / cols);
      let w = (width - (cols - 1) * gap) / cols;
      if (rows * (w * 3 / 4) + (rows - 1) * gap > height) w = ((height - (rows - 1) * gap) / rows) * 4 / 3;
      best = Math.max(best, Math.floor(w));
    }
    grid.style.setProperty("--tile-width", `${best}px`);
  }

  function renderControls() {
    const mic = $("mic");
    const cam = $("cam");
    mic.disabled = !state.local.audio;
    cam.disabled = !state.local.video;
    mic.textContent = state.micMuted ? "Unmute mic" : "Mute mic";
    cam.textContent = state.camOff ? "Camera on" : "Camera off";
    mic.setAttribute("aria-pressed", String(state.micMuted));
    cam.setAttribute("aria-pressed", String(state.camOff));
  }

  function renderPublish() {
    const { audio, video } = state.local;
    if (!audio && !video) setStatus("publish-status", "idle", "not sending (no camera or microphone)");
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
    entry.append(head, el("div", "message-text", chat.text));
    appendEntry(entry);
  }

  /** A line from the page itself; kind "refused" marks something the person tried that was not done. */
  function addNotice(text, kind) {
    appendEntry(el("li", kind ? `notice ${kind}` : "notice", text));
  }

  // --- wiring --------------------------------------------------------------------------------------

  function init() {
    const params = new URLSearchParams(location.search);
    $("join-name").value = params.get("name") || "";
    renderInvite();
    $("join-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("join-name").value.trim();
      if (name) join(name);
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      sendMessage();
    });
    $("to").addEventListener("change", (event) => chooseRecipient(event.target.value || null));
    $("mic").addEventListener("click", () => setMic(!state.micMuted).catch((e) => addNotice(e.message)));
    $("cam").addEventListener("click", () => setCamera(!state.camOff).catch((e) => addNotice(e.message)));
    $("leave").addEventListener("click", () => leave());
    $("copy-link").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("invite-link").href);
        $("copy-link").textContent = "Copied";
      } catch {
        $("copy-link").textContent = "Copy failed";
      }
      setTimeout(() => { $("copy-link").textContent = "Copy link"; }, 2000);
    });
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
