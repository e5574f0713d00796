// The video tiles: one per person (ours first), each showing its receive slot's stream or why there
// is no picture, the grid sized to fill the stage, and the view (the picture size) we ask the
// server for, which follows the tiles' size.

import { LIMITS } from "./config.js";
import { $, el } from "./dom.js";
import { Phase, state } from "./state.js";
import { badges } from "./people.js";

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
    if (!state.devices.video) note = "no camera";
    else if (state.camOff) note = "camera off";
    else if (!state.local.video) note = "starting camera…";
    tile.flags.textContent = !state.devices.audio ? "no mic" : state.micMuted ? "mic off" : "";
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

export function renderTiles() {
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

/** One column of a narrow window (phones): the view scrolls, the tiles come first (style.css). */
const STACKED = window.matchMedia("(max-width: 800px)");
/** ... except a phone on its side or a short narrow window: the tiles beside the messages. */
const BESIDE = window.matchMedia("(max-width: 800px) and (max-height: 500px) and (min-width: 560px)");
/** A small screen: compact header and status bar, the messages before the people. */
const COMPACT = window.matchMedia("(max-width: 600px), (max-height: 500px)");

/**
 * The tile size (4:3) that fills the stage best for this many tiles; set through CSSOM, not inline
 * CSS. Side by side with the people and messages, the tiles fit the stage; stacked above them (a
 * narrow window, whose view scrolls) they may take the view's visible height, so two people on a
 * phone get the whole width each, and six get two columns rather than three tiny ones. On a small
 * screen they leave room below for the messages and the composer, if they keep LIMITS.stackedTilesMin
 * of the height.
 */
export function layoutGrid() {
  const grid = $("grid");
  const count = Math.max(1, state.tiles.size);
  const gap = LIMITS.tileGap;
  // Whole pixels rounded down: clientWidth rounds 717.5 up to 718, and tiles sized for 718 wrap.
  const box = grid.getBoundingClientRect();
  const width = Math.floor(box.width);
  let height = Math.floor(box.height);
  if (STACKED.matches && !BESIDE.matches) {
    const view = $("call-view");
    const style = getComputedStyle(view);
    height = Math.floor(view.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom));
    if (COMPACT.matches) {
      const chat = $("chat-panel").offsetHeight + parseFloat(style.rowGap);
      if (height - chat >= height * LIMITS.stackedTilesMin) height -= chat;
    }
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

/** Ask for pictures the size of a remote tile (in device pixels), at most 640×480. */
export async function sendView() {
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

export function viewLater() {
  clearTimeout(viewTimer);
  viewTimer = setTimeout(() => { if (state.phase === Phase.IN) sendView().catch(() => {}); }, LIMITS.viewDebounce);
}
