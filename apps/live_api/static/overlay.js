// SpotOn overlay page: a <video> per camera with a <canvas> on top drawing tick boxes and IDs,
// scaled to the displayed size (boxes in ticks are normalised to [0, 1] of the source frame).
// Video comes over WebRTC (WHEP: the frames the session processed); each frame is drawn with the
// tick of that very frame: requestVideoFrameCallback's rtpTimestamp minus the peer's RTP offset is
// the tick's media_ts. A short buffer keeps recent ticks; the receiver holds frames a little
// (jitterBufferTarget) so a frame's tick is there when it is shown. A lost peer reconnects with
// backoff; a stored camera whose WebRTC never connects falls back to the Range-served MP4, which
// follows the ticks' frame times instead. A camera of kind "webrtc" can take this browser's camera
// (WHIP). The WebSocket reconnects with exponential backoff; the token lives in localStorage.
// Following: click a box to follow that person (operators; viewers see it all read-only); the
// tracking phase, the mode toggle, manual PTZ controls (buttons and keys) in manual mode. The PTZ
// camera (picked in #ptz-camera, or the camera of the clicked box) shows its virtual PTZ beside the
// wide view: a second WHEP track (?view=ptz) drawn frame-exact like the wide one, with the tick's
// ptz.view boxes (space "processed", viewport coordinates).
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "spoton.token";
const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 10000;
const RESYNC_S = 0.75; // MP4 fallback: seek the video when it drifts this far from the tick's frame time
// hold received frames this long (?jitter_ms= overrides): a tick leaves up to a tick period (100 ms at
// the default 10/s) after its frame
const JITTER_TARGET_MS = Number(new URLSearchParams(location.search).get("jitter_ms") || 100);
const TICK_BUFFER = 120; // ticks kept per camera for frame-exact drawing
const WEBRTC_CONNECT_MS = 10000; // a first WebRTC attempt without a frame by then: fall back (stored video)
const STALL_MS = 4000; // a connected peer without a frame for this long is lost: reconnect
const OFFSET_POLL_MS = 250;
const PTZ_KEY_SPEED = 0.5; // velocity of a held arrow or +/- key
const MOVE_KEYS = { ArrowLeft: [-1, 0, 0], ArrowRight: [1, 0, 0], ArrowUp: [0, 1, 0], ArrowDown: [0, -1, 0],
                    "+": [0, 0, 1], "=": [0, 0, 1], "-": [0, 0, -1], "_": [0, 0, -1] };

const $ = (id) => document.getElementById(id);
// What the page is doing, for people (the status line) and for tests (window.spoton).
const state = window.spoton = {
  sessionId: null, socket: null, ticks: 0, lastTick: null, lastStatus: null, wsState: "closed",
  reconnects: 0, boxesDrawn: {}, cameras: {}, role: null, ptzCamera: null, lastError: null, acks: 0,
};
// Frame-exact drawing, per camera: how each shown video frame matched the tick drawn on it.
const stats = window.spotonStats = { cameras: {} };
let backoffMs = BACKOFF_INITIAL_MS;
let reconnectTimer = null;
const heldKeys = new Set(); // move keys held down: their velocities add up

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

function say(text, isError = false) {
  const line = $("status");
  line.textContent = text;
  line.classList.toggle("error", isError);
}

async function api(path, options = {}) {
  const response = await fetch(API + path, {
    ...options, headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json",
                           ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

function colourOf(id) { return `hsl(${(id * 67) % 360}, 90%, 55%)`; }

function authHeaders(extra = {}) { return { Authorization: `Bearer ${token()}`, ...extra }; }

function cameraPath(name) {
  return `${API}/sessions/${encodeURIComponent(state.sessionId)}/cameras/${encodeURIComponent(name)}`;
}

function mediaUrl(key) {
  return `${API}/media/${key.split("/").map(encodeURIComponent).join("/")}?token=${encodeURIComponent(token())}`;
}

// --- cameras -----------------------------------------------------------------------------
// A pane: one video (wide: the camera's processed frames; ptz: its virtual PTZ) with its canvas.
function newPane(name, source, figure, ptz) {
  const stage = document.createElement("div");
  stage.className = ptz ? "stage ptz" : "stage wide";
  const canvas = document.createElement("canvas");
  stage.append(canvas);
  figure.querySelector(".stages").append(stage);
  const statsKey = ptz ? `${name}:ptz` : name;
  const pane = { name, ptz, statsKey, source, figure, video: null, canvas, stage, tick: null,
                 ticks: new Map(), whep: null, transport: null, attempts: 0, everPlayed: false,
                 backoffMs: BACKOFF_INITIAL_MS, frameMedia: null, drawnMedia: null };
  stats.cameras[statsKey] = { transport: null, framesDrawn: 0, exact: 0, late: 0, unmatched: 0,
                              maxMismatchFrames: 0, mismatchFrames: {}, reconnects: 0, sourceToDisplayMs: [] };
  stage.addEventListener("click", (event) => clickBox(pane, event));
  return pane;
}

function cameraView(name, source) {
  let view = state.cameras[name];
  if (view) return view;
  const figure = document.createElement("figure");
  figure.className = "camera";
  figure.dataset.camera = name;
  const stages = document.createElement("div");
  stages.className = "stages";
  const caption = document.createElement("figcaption");
  caption.textContent = name;
  figure.append(stages, caption);
  $("cameras").append(figure);
  view = state.cameras[name] = newPane(name, source, figure, false);
  Object.assign(view, { caption, ptzPane: null });
  if (source && source.kind === "webrtc" && navigator.mediaDevices) addPublishButton(view);
  if (window.RTCPeerConnection) startWebrtc(view);
  else fallback(view, "this browser has no WebRTC");
  return view;
}

function currentPane(pane) {
  const view = state.cameras[pane.name];
  return view && (pane.ptz ? view.ptzPane : view);
}

// The PTZ camera's virtual PTZ pane, beside its wide view; other cameras' PTZ panes are closed.
function showPtzPanes() {
  for (const view of Object.values(state.cameras)) {
    const want = view.name === state.ptzCamera && view.tick && view.tick.ptz && view.tick.ptz.kind === "virtual";
    if (want && !view.ptzPane && window.RTCPeerConnection) {
      view.ptzPane = newPane(view.name, view.source, view.figure, true);
      view.figure.classList.add("with-ptz");
      startWebrtc(view.ptzPane);
    } else if (!want && view.ptzPane) {
      closePane(view.ptzPane);
      view.ptzPane.stage.remove();
      view.figure.classList.remove("with-ptz");
      delete stats.cameras[view.ptzPane.statsKey];
      view.ptzPane = null;
    }
  }
}

function closePane(pane) {
  release(pane.whep);
  pane.whep = null;
  if (pane.video) { pane.video.pause(); pane.video.srcObject = null; pane.video.removeAttribute("src"); pane.video.load(); }
}

function setMedia(view, element) {
  view.stage.querySelectorAll("video, img, .placeholder").forEach((old) => old.remove());
  view.stage.prepend(element);
}

function newVideo() {
  const video = document.createElement("video");
  Object.assign(video, { muted: true, autoplay: true, playsInline: true });
  return video;
}

// Without WebRTC: the stored sub-video over HTTP Range, an MJPEG <img>, or boxes only.
function fallback(view, reason) {
  const { name, source } = view;
  view.transport = stats.cameras[view.statsKey].transport = "fallback";
  if (source && ["store", "upload"].includes(source.kind)) {
    const video = newVideo();
    Object.assign(video, { loop: true, preload: "auto" });
    video.src = mediaUrl(source.uri);
    video.addEventListener("loadedmetadata", () => video.play().catch(() => {}));
    setMedia(view, video);
    view.video = video;
    view.transport = stats.cameras[view.statsKey].transport = "mp4";
  } else if (source && source.kind === "http") { // an MJPEG stream: browsers show it in an <img>
    const img = document.createElement("img");
    img.src = source.uri;
    img.alt = `${name} stream`;
    setMedia(view, img);
  } else {
    const placeholder = document.createElement("div");
    placeholder.className = "placeholder";
    placeholder.textContent = `${source ? source.kind : "no"} video (${reason}): boxes only`;
    setMedia(view, placeholder);
  }
}

function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000); // host candidates are enough; do not wait for slow interfaces
  });
}

async function signal(path, pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const response = await fetch(path, { method: "POST", body: pc.localDescription.sdp,
                                       headers: authHeaders({ "Content-Type": "application/sdp" }) });
  const text = await response.text();
  if (response.status !== 201) {
    let detail = text;
    try { detail = JSON.parse(text).detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  return response.headers.get("Location");
}

function release(whep) {
  if (!whep || whep.closed) return;
  whep.closed = true;
  whep.pc.close();
  if (whep.location) fetch(whep.location, { method: "DELETE", headers: authHeaders(), keepalive: true }).catch(() => {});
}

// WHEP: the session's processed frames of this camera (or its virtual PTZ's); see the file comment.
async function startWebrtc(view) {
  const sessionId = state.sessionId;
  const video = newVideo();
  const pc = new RTCPeerConnection({ iceServers: [] });
  const whep = view.whep = { pc, location: null, offset: null, started: performance.now(), lastFrameAt: null,
                             closed: false };
  view.attempts += 1;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => {
    const receiver = event.receiver;
    if ("jitterBufferTarget" in receiver) receiver.jitterBufferTarget = JITTER_TARGET_MS;
    else if ("playoutDelayHint" in receiver) receiver.playoutDelayHint = JITTER_TARGET_MS / 1000;
    video.srcObject = new MediaStream([event.track]);
    video.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (["failed", "closed"].includes(pc.connectionState)) lost(view, whep, `peer ${pc.connectionState}`);
  };
  try {
    whep.location = await signal(`${cameraPath(view.name)}/whep${view.ptz ? "?view=ptz" : ""}`, pc);
  } catch (error) {
    return lost(view, whep, error.message);
  }
  if (view.whep !== whep || state.sessionId !== sessionId) return release(whep);
  setMedia(view, video);
  view.video = video;
  view.transport = stats.cameras[view.statsKey].transport = "webrtc";
  pollOffset(view, whep);
  const step = (_, metadata) => {
    if (view.whep !== whep) return;
    whep.lastFrameAt = performance.now();
    view.everPlayed = true;
    view.backoffMs = BACKOFF_INITIAL_MS;
    if (whep.offset !== null && metadata.rtpTimestamp !== undefined) {
      const media = (metadata.rtpTimestamp - whep.offset) >>> 0; // mod 2^32, like RTP time
      drawFrame(view, media);
      recordLatency(view, media, metadata.expectedDisplayTime);
    }
    video.requestVideoFrameCallback(step);
  };
  video.requestVideoFrameCallback(step);
}

async function pollOffset(view, whep) {
  while (view.whep === whep && whep.offset === null) {
    try {
      const response = await fetch(whep.location, { headers: authHeaders() });
      if (response.ok) whep.offset = (await response.json()).rtp_timestamp_offset;
    } catch (_) { /* retried below */ }
    if (whep.offset === null) await new Promise((resolve) => setTimeout(resolve, OFFSET_POLL_MS));
  }
}

// A peer that failed or stalled: reconnect with backoff, or (stored video, never played) fall back.
function lost(view, whep, reason) {
  if (view.whep !== whep) return;
  release(whep);
  view.whep = null;
  const ended = state.lastStatus && ["stopped", "failed"].includes(state.lastStatus.state);
  if (currentPane(view) !== view || ended) return;
  const stored = view.source && ["store", "upload"].includes(view.source.kind);
  if (!view.everPlayed && stored && !view.ptz) return fallback(view, reason);
  stats.cameras[view.statsKey].reconnects += 1;
  if (!view.ptz) view.caption.textContent = `${view.name} · video lost (${reason}): reconnecting`;
  setTimeout(() => { if (currentPane(view) === view && !view.whep) startWebrtc(view); }, view.backoffMs);
  view.backoffMs = Math.min(view.backoffMs * 2, BACKOFF_MAX_MS);
}

function watchdog(view) {
  const whep = view.whep;
  if (!whep || !whep.location) return;
  const now = performance.now();
  if (whep.lastFrameAt === null && now - whep.started > WEBRTC_CONNECT_MS) lost(view, whep, "no video arrived");
  else if (whep.lastFrameAt !== null && now - whep.lastFrameAt > STALL_MS) lost(view, whep, "video stalled");
}

// The frame period of the stream in media units: the median gap between recent frames.
function framePeriod(view, media) {
  if (view.frameMedia !== null && media > view.frameMedia) {
    view.gaps = [...(view.gaps || []).slice(-30), media - view.frameMedia];
  }
  const gaps = [...(view.gaps || [])].sort((a, b) => a - b);
  return gaps.length ? gaps[gaps.length >> 1] : null;
}

// The tick of the frame with this media timestamp, else the newest older one; the mismatch between
// the frame and the tick drawn on it is counted in frame periods.
function drawFrame(view, media) {
  const camera = stats.cameras[view.statsKey];
  const period = framePeriod(view, media);
  view.frameMedia = media;
  let tick = view.ticks.get(media);
  if (!tick) {
    const older = [...view.ticks.keys()].filter((ts) => ts < media);
    if (!older.length) { camera.unmatched += 1; return draw(view, null); }
    tick = view.ticks.get(Math.max(...older));
  }
  draw(view, tick);
  view.drawnMedia = tick.media_ts % 2 ** 32;
  if (period === null) return; // the first frame: no period to count in yet
  const mismatch = Math.round(Math.abs(media - view.drawnMedia) / period);
  camera.framesDrawn += 1;
  if (media === view.drawnMedia) camera.exact += 1;
  camera.mismatchFrames[mismatch] = (camera.mismatchFrames[mismatch] || 0) + 1;
  camera.maxMismatchFrames = Math.max(camera.maxMismatchFrames, mismatch);
}

// Source -> screen: media_ts counts from the session's creation (status created_unix_ms), so a
// frame was available at its source at created_unix_ms + media / 90 (same machine: same clock).
function recordLatency(view, media, displayTime) {
  const created = state.lastStatus && state.lastStatus.created_unix_ms;
  if (!created || media >= 2 ** 31) return; // no status yet, or a stream older than ~6.6 h (wrapped)
  const latencies = stats.cameras[view.statsKey].sourceToDisplayMs;
  latencies.push(Math.round(performance.timeOrigin + displayTime - (created + media / 90)));
  if (latencies.length > 600) latencies.shift();
}

// WHIP: send this browser's camera into a "webrtc" camera of the session.
function addPublishButton(view) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "publish";
  button.textContent = "Send my camera";
  button.addEventListener("click", () => publishWebcam(view, button));
  view.figure.append(button);
}

async function publishWebcam(view, button) {
  button.disabled = true;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    const pc = new RTCPeerConnection({ iceServers: [] });
    for (const track of stream.getVideoTracks()) pc.addTransceiver(track, { direction: "sendonly" });
    const location = await signal(`${cameraPath(view.name)}/whip`, pc);
    view.whip = { pc, location, closed: false, stream };
    button.textContent = "Sending my camera";
  } catch (error) {
    button.disabled = false;
    say(`could not send the camera: ${error.message}`, true);
  }
}

function clearCameras() {
  for (const view of Object.values(state.cameras)) {
    closePane(view);
    if (view.ptzPane) closePane(view.ptzPane);
    if (view.whip) { release(view.whip); view.whip.stream.getTracks().forEach((track) => track.stop()); }
  }
  state.cameras = {};
  state.boxesDrawn = {};
  stats.cameras = {};
  $("cameras").replaceChildren();
}

function draw(view, tick) {
  const { canvas } = view;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * ratio), height = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  if (!tick) return;
  const selected = state.lastTick && state.lastTick.selected_target_id;
  const tracks = view.ptz ? ((tick.ptz && tick.ptz.view) || { tracks: [] }).tracks : tick.tracks;
  ctx.font = `${Math.round(13 * ratio)}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const track of tracks) {
    const { x, y, w, h } = track.bbox;
    const colour = colourOf(track.global_id);
    const target = track.global_id === selected;
    if (target) { // the followed person: a white halo under a thick outline
      ctx.lineWidth = 8 * ratio;
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(x * width, y * height, w * width, h * height);
    }
    ctx.lineWidth = (target ? 4 : 2) * ratio;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x * width, y * height, w * width, h * height);
    const label = `${target ? "◎ " : ""}#${track.global_id} t${track.track_id}`;
    const textWidth = ctx.measureText(label).width + 6 * ratio;
    ctx.fillStyle = colour;
    ctx.fillRect(x * width, y * height - 16 * ratio, textWidth, 16 * ratio);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x * width + 3 * ratio, y * height - 2 * ratio);
  }
  view.drawn = tick; // what the canvas shows now (a newer tick waits for the next frame)
  view.drawnTracks = tracks;
  view.drawnTarget = tracks.some((track) => track.global_id === selected) ? selected : null;
  state.boxesDrawn[view.statsKey] = tracks.length;
}

function onTick(tick) {
  state.ticks += 1;
  state.lastTick = tick;
  const sources = (state.lastStatus && state.lastStatus.cameras) || {};
  for (const [name, camera] of Object.entries(tick.cameras)) {
    const view = cameraView(name, sources[name] && sources[name].source);
    view.tick = camera;
    const media = camera.media_ts % 2 ** 32;
    for (const pane of [view, view.ptzPane]) {
      if (!pane) continue;
      pane.tick = camera;
      pane.ticks.set(media, camera);
      if (pane.ticks.size > TICK_BUFFER) pane.ticks.delete(pane.ticks.keys().next().value);
      if (media === pane.frameMedia && pane.drawnMedia !== media) { // its frame is on screen already
        draw(pane, camera);
        pane.drawnMedia = media;
        stats.cameras[pane.statsKey].late += 1;
      }
      pane.stage.style.aspectRatio = `${camera.frame_size.w} / ${camera.frame_size.h}`;
    }
    const video = view.video;
    if (view.transport === "mp4" && video.readyState >= 1 && Math.abs(video.currentTime - camera.frame_ts) > RESYNC_S
        && camera.frame_ts < video.duration) {
      video.currentTime = camera.frame_ts; // a Range request: the video follows the processed frames
    }
    const ptz = camera.ptz ? ` · PTZ ${camera.ptz.mode} pan ${camera.ptz.pan} tilt ${camera.ptz.tilt} `
      + `zoom ${camera.ptz.zoom}${camera.ptz.moving ? " (moving)" : ""}` : "";
    view.caption.textContent = `${name} · frame ${camera.frame_index} · ${camera.tracks.length} people${ptz}`;
  }
  showFollow(tick);
  showPtzPanes();
}

function onStatus(status) {
  state.lastStatus = status;
  for (const [name, camera] of Object.entries(status.cameras || {})) cameraView(name, camera.source);
  const latency = status.latency_ms || {};
  say(`session ${status.session_id}: ${status.state}${status.reason ? ` (${status.reason})` : ""} · `
      + `${status.fps} fps · latency p50 ${latency.p50 ?? "–"} ms p95 ${latency.p95 ?? "–"} ms · `
      + `dropped ${status.dropped_frames} · socket ${state.wsState}`, status.state === "failed");
}

// The MP4 fallback and a WebRTC view whose RTP offset is not known yet draw the latest tick;
// a WebRTC view with its offset draws in its video frame callback (drawFrame).
function render() {
  for (const camera of Object.values(state.cameras)) {
    for (const view of [camera, camera.ptzPane]) {
      if (!view) continue;
      watchdog(view);
      if (!(view.transport === "webrtc" && view.whep && view.whep.offset !== null)) draw(view, view.tick);
    }
  }
  requestAnimationFrame(render);
}

// --- following: target, phase, mode, manual PTZ ------------------------------------------------
const canCommand = () => ["operator", "admin"].includes(state.role);

function showRole(role) {
  state.role = role;
  document.body.classList.toggle("read-only", !canCommand());
  document.querySelectorAll(".operator").forEach((element) => { element.hidden = !canCommand(); });
  $("read-only").hidden = canCommand();
}

function showError(message) {
  state.lastError = message;
  $("command-error").textContent = message ? `${message.command || "command"} refused (${message.code}): ${message.detail}` : "";
}

function send(command) {
  if (!canCommand()) return showError({ command: command.type, code: 403, detail: "this token may only watch" });
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    return showError({ command: command.type, code: 0, detail: "not connected to the session (reconnecting)" });
  }
  state.socket.send(JSON.stringify(command));
}

// A click on a stage follows the smallest drawn box under the pointer (the PTZ pane's boxes too).
function clickBox(pane, event) {
  const rect = pane.stage.getBoundingClientRect();
  const px = (event.clientX - rect.left) / rect.width, py = (event.clientY - rect.top) / rect.height;
  const hits = (pane.drawnTracks || []).filter(({ bbox: b }) => px >= b.x && px <= b.x + b.w && py >= b.y && py <= b.y + b.h);
  if (!hits.length) return;
  const hit = hits.reduce((a, b) => (a.bbox.w * a.bbox.h <= b.bbox.w * b.bbox.h ? a : b));
  if (!canCommand()) return showError({ command: "set_target_id", code: 403, detail: "this token may only watch" });
  send({ type: "set_target_id", target_id: hit.global_id });
  setPtzCamera(pane.name);
}

function setPtzCamera(name) {
  state.ptzCamera = name || null;
  $("ptz-camera").value = state.ptzCamera || "";
  showPtzPanes();
}

function showFollow(tick) {
  const phase = tick.tracking_phase || "IDLE";
  $("phase").textContent = phase;
  $("phase").dataset.phase = phase;
  $("target").textContent = tick.selected_target_id === null ? "none" : `#${tick.selected_target_id}`;
  $("mode").textContent = `mode: ${tick.mode}`;
  $("mode").dataset.mode = tick.mode;
  const select = $("ptz-camera");
  const withPtz = Object.keys(tick.cameras).filter((name) => tick.cameras[name].ptz);
  if (select.options.length !== withPtz.length + 1) {
    select.replaceChildren(new Option("(none)", ""), ...withPtz.map((name) => new Option(name, name)));
    select.value = state.ptzCamera || "";
  }
  if (tick.mode === "manual" && !state.ptzCamera && withPtz.length) setPtzCamera(withPtz[0]);
  $("ptz-controls").hidden = !(tick.mode === "manual" && canCommand());
}

function ptzMove([pan, tilt, zoom], speed = PTZ_KEY_SPEED) {
  if (!state.ptzCamera) return showError({ command: "ptz_move", code: 0, detail: "pick a PTZ camera first" });
  send({ type: "ptz_move", camera: state.ptzCamera, pan: pan * speed, tilt: tilt * speed, zoom: zoom * speed });
}

function ptzStop() { if (state.ptzCamera) send({ type: "ptz_stop", camera: state.ptzCamera }); }

function ptzPreset(name, save) {
  if (!state.ptzCamera) return showError({ command: "ptz_goto_preset", code: 0, detail: "pick a PTZ camera first" });
  send({ type: save ? "ptz_save_preset" : "ptz_goto_preset", camera: state.ptzCamera, preset: name });
}

// The velocity of the held move keys (clamped per axis), or a stop when none is held.
function moveHeld() {
  const sum = [0, 0, 0];
  for (const key of heldKeys) MOVE_KEYS[key].forEach((v, i) => { sum[i] = Math.max(-1, Math.min(1, sum[i] + v)); });
  if (heldKeys.size) ptzMove(sum); else ptzStop();
}

function manualKeys() {
  return state.sessionId && canCommand() && state.lastTick && state.lastTick.mode === "manual";
}

function onKeyDown(event) {
  if (!manualKeys() || ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
  const digit = /^(?:Digit|Numpad)([0-9])$/.exec(event.code);
  if (MOVE_KEYS[event.key]) {
    event.preventDefault();
    if (event.repeat || heldKeys.has(event.key)) return;
    heldKeys.add(event.key);
    moveHeld();
  } else if (event.key === " " || event.key === "Escape") {
    event.preventDefault();
    heldKeys.clear();
    ptzStop();
  } else if (digit && !event.repeat) {
    event.preventDefault();
    ptzPreset(digit[1], event.shiftKey);
  }
}

function onKeyUp(event) {
  if (!heldKeys.delete(event.key) || !manualKeys()) return;
  event.preventDefault();
  moveHeld();
}

function initFollow() {
  $("mode").addEventListener("click", () => {
    const mode = state.lastTick && state.lastTick.mode === "manual" ? "auto" : "manual";
    send({ type: "set_mode", mode });
  });
  $("clear-target").addEventListener("click", () => send({ type: "clear_target" }));
  $("ptz-camera").addEventListener("change", (event) => setPtzCamera(event.target.value));
  for (const button of document.querySelectorAll("#ptz-controls [data-move]")) {
    const velocity = button.dataset.move.split(",").map(Number);
    button.addEventListener("pointerdown", () => ptzMove(velocity));
    button.addEventListener("pointerup", ptzStop);
    button.addEventListener("pointerleave", (event) => { if (event.buttons) ptzStop(); });
  }
  $("ptz-stop").addEventListener("click", ptzStop);
  for (const button of document.querySelectorAll("#ptz-controls [data-preset]")) {
    button.title = `go to preset ${button.dataset.preset} (shift+click: save it)`;
    button.addEventListener("click", (event) => ptzPreset(button.dataset.preset, event.shiftKey));
  }
  document.addEventListener("keydown", onKeyDown);
  document.addEventListener("keyup", onKeyUp);
  window.addEventListener("blur", () => { if (heldKeys.size) { heldKeys.clear(); if (manualKeys()) ptzStop(); } });
}

// --- WebSocket with backoff ----------------------------------------------------------------
function connect() {
  clearTimeout(reconnectTimer);
  if (!state.sessionId) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/sessions/${encodeURIComponent(state.sessionId)}`
                               + `?token=${encodeURIComponent(token())}`);
  state.socket = socket;
  state.wsState = "connecting";
  socket.onopen = () => { state.wsState = "open"; backoffMs = BACKOFF_INITIAL_MS; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "tick") onTick(message);
    else if (message.type === "status") onStatus(message);
    else if (message.type === "error") showError(message);
    else if (message.type === "ack") { state.acks += 1; showError(null); }
  };
  socket.onclose = () => {
    if (state.socket !== socket) return; // replaced on purpose
    state.wsState = "closed";
    const final = state.lastStatus && ["stopped", "failed"].includes(state.lastStatus.state);
    if (final || !state.sessionId) return;
    state.reconnects += 1;
    say(`connection lost: reconnecting in ${(backoffMs / 1000).toFixed(1)} s`, true);
    reconnectTimer = setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
  };
}

function watch(sessionId) {
  if (state.socket) { const old = state.socket; state.socket = null; old.close(); }
  clearCameras();
  Object.assign(state, { sessionId: sessionId || null, lastTick: null, lastStatus: null, ticks: 0, ptzCamera: null });
  heldKeys.clear();
  showError(null);
  $("follow").hidden = !sessionId;
  $("ptz-controls").hidden = true;
  backoffMs = BACKOFF_INITIAL_MS;
  $("stop").disabled = !sessionId;
  $("sessions").value = sessionId || "";
  if (sessionId) connect();
}

// --- sessions and environments -------------------------------------------------------------
async function refresh() {
  try {
    const [{ sessions }, { environments }, { role }] = await Promise.all([api("/sessions"), api("/environments"),
                                                                         api("/me")]);
    showRole(role);
    const select = $("sessions");
    select.replaceChildren(new Option("(none)", ""));
    for (const s of sessions) select.append(new Option(`${s.session_id} · ${s.environment} · ${s.state}`, s.session_id));
    select.value = state.sessionId || "";
    const envs = $("environments");
    envs.replaceChildren(...environments.map((e) => new Option(`${e.name} (${e.cameras.length} cameras)`, e.name)));
    if (!state.sessionId) say(`${sessions.length} session(s) running. Pick one or start one.`);
  } catch (error) {
    say(`could not list sessions: ${error.message}`, true);
  }
}

async function startSession() {
  try {
    const environment = $("environments").value || "pets_s2l1";
    say(`starting a session on ${environment}…`);
    const created = await api("/sessions", { method: "POST", body: JSON.stringify({ environment }) });
    await refresh();
    watch(created.session_id);
  } catch (error) {
    say(`could not start a session: ${error.message}`, true);
  }
}

async function stopSession() {
  if (!state.sessionId) return;
  try {
    await api(`/sessions/${encodeURIComponent(state.sessionId)}`, { method: "DELETE" });
  } catch (error) {
    say(`could not stop the session: ${error.message}`, true);
  }
  watch(null);
  refresh();
}

function init() {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, fromUrl);
    history.replaceState(null, "", location.pathname); // keep the token out of the address bar
  }
  $("token").value = token();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    refresh();
    if (state.sessionId) watch(state.sessionId);
  });
  $("refresh").addEventListener("click", refresh);
  $("sessions").addEventListener("change", (event) => watch(event.target.value));
  $("start").addEventListener("click", startSession);
  $("stop").addEventListener("click", stopSession);
  initFollow();
  if (token()) refresh();
  requestAnimationFrame(render);
}

init();
