// SpotOn overlay page: a <video> per camera (store media served by the API with HTTP Range)
// with a <canvas> on top drawing the latest tick's boxes and IDs, scaled to the displayed size.
// Boxes in ticks are normalised to [0, 1] of the source frame, so drawing is x * width.
// The WebSocket reconnects with exponential backoff; the token lives in localStorage.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "spoton.token";
const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 10000;
const RESYNC_S = 0.75; // seek the video when it drifts this far from the tick's frame time

const $ = (id) => document.getElementById(id);
// What the page is doing, for people (the status line) and for tests (window.spoton).
const state = window.spoton = {
  sessionId: null, socket: null, ticks: 0, lastTick: null, lastStatus: null, wsState: "closed",
  reconnects: 0, boxesDrawn: {}, cameras: {},
};
let backoffMs = BACKOFF_INITIAL_MS;
let reconnectTimer = null;

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

function mediaUrl(key) {
  return `${API}/media/${key.split("/").map(encodeURIComponent).join("/")}?token=${encodeURIComponent(token())}`;
}

// --- cameras -----------------------------------------------------------------------------
function cameraView(name, source) {
  let view = state.cameras[name];
  if (view) return view;
  const figure = document.createElement("figure");
  figure.className = "camera";
  figure.dataset.camera = name;
  const stage = document.createElement("div");
  stage.className = "stage";
  let video = null;
  if (source && ["store", "upload"].includes(source.kind)) {
    video = document.createElement("video");
    Object.assign(video, { muted: true, loop: true, autoplay: true, playsInline: true, preload: "auto" });
    video.src = mediaUrl(source.uri);
    video.addEventListener("loadedmetadata", () => video.play().catch(() => {}));
    stage.append(video);
  } else if (source && source.kind === "http") { // an MJPEG stream: browsers show it in an <img>
    const img = document.createElement("img");
    img.src = source.uri;
    img.alt = `${name} stream`;
    stage.append(img);
  } else {
    const placeholder = document.createElement("div");
    placeholder.className = "placeholder";
    placeholder.textContent = source ? `${source.kind} source: boxes only` : "no video";
    stage.append(placeholder);
  }
  const canvas = document.createElement("canvas");
  stage.append(canvas);
  const caption = document.createElement("figcaption");
  caption.textContent = name;
  figure.append(stage, caption);
  $("cameras").append(figure);
  view = state.cameras[name] = { name, video, canvas, caption, stage, tick: null };
  return view;
}

function clearCameras() {
  for (const view of Object.values(state.cameras)) {
    if (view.video) { view.video.pause(); view.video.removeAttribute("src"); view.video.load(); }
  }
  state.cameras = {};
  state.boxesDrawn = {};
  $("cameras").replaceChildren();
}

function draw(view) {
  const { canvas, tick } = view;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * ratio), height = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  if (!tick) return;
  const selected = state.lastTick && state.lastTick.selected_target_id;
  ctx.font = `${Math.round(13 * ratio)}px system-ui, sans-serif`;
  ctx.textBaseline = "bottom";
  for (const track of tick.tracks) {
    const { x, y, w, h } = track.bbox;
    const colour = colourOf(track.global_id);
    ctx.lineWidth = (track.global_id === selected ? 4 : 2) * ratio;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x * width, y * height, w * width, h * height);
    const label = `#${track.global_id} t${track.track_id}`;
    const textWidth = ctx.measureText(label).width + 6 * ratio;
    ctx.fillStyle = colour;
    ctx.fillRect(x * width, y * height - 16 * ratio, textWidth, 16 * ratio);
    ctx.fillStyle = "#000";
    ctx.fillText(label, x * width + 3 * ratio, y * height - 2 * ratio);
  }
  view.drawn = tick; // what the canvas shows now (a newer tick waits for the next frame)
  state.boxesDrawn[view.name] = tick.tracks.length;
}

function onTick(tick) {
  state.ticks += 1;
  state.lastTick = tick;
  const sources = (state.lastStatus && state.lastStatus.cameras) || {};
  for (const [name, camera] of Object.entries(tick.cameras)) {
    const view = cameraView(name, sources[name] && sources[name].source);
    view.tick = camera;
    view.stage.style.aspectRatio = `${camera.frame_size.w} / ${camera.frame_size.h}`;
    const video = view.video;
    if (video && video.readyState >= 1 && Math.abs(video.currentTime - camera.frame_ts) > RESYNC_S
        && camera.frame_ts < video.duration) {
      video.currentTime = camera.frame_ts; // a Range request: the video follows the processed frames
    }
    view.caption.textContent = `${name} · frame ${camera.frame_index} · ${camera.tracks.length} people`;
  }
}

function onStatus(status) {
  state.lastStatus = status;
  for (const [name, camera] of Object.entries(status.cameras || {})) cameraView(name, camera.source);
  const latency = status.latency_ms || {};
  say(`session ${status.session_id}: ${status.state}${status.reason ? ` (${status.reason})` : ""} · `
      + `${status.fps} fps · latency p50 ${latency.p50 ?? "–"} ms p95 ${latency.p95 ?? "–"} ms · `
      + `dropped ${status.dropped_frames} · socket ${state.wsState}`, status.state === "failed");
}

function render() {
  for (const view of Object.values(state.cameras)) draw(view);
  requestAnimationFrame(render);
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
    else if (message.type === "error") say(`server: ${message.detail}`, true);
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
  Object.assign(state, { sessionId: sessionId || null, lastTick: null, lastStatus: null, ticks: 0 });
  backoffMs = BACKOFF_INITIAL_MS;
  $("stop").disabled = !sessionId;
  $("sessions").value = sessionId || "";
  if (sessionId) connect();
}

// --- sessions and environments -------------------------------------------------------------
async function refresh() {
  try {
    const [{ sessions }, { environments }] = await Promise.all([api("/sessions"), api("/environments")]);
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
  if (token()) refresh();
  requestAnimationFrame(render);
}

init();
