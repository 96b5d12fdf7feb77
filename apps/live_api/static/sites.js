// SpotOn sites page: list/create/rename/delete sites, add cameras (by URI with a connection test, or
// by uploading a video followed as a job), and calibrate a camera by clicking point pairs on its
// snapshot and the floor plan. Every edit goes through /api/v1/sites (the server checks and refuses,
// this page only shows what it says); viewers get the same pages without the edit controls.
// Canvases hold images at their natural size and are scaled by CSS: a click is converted back to
// image (or plan) pixels, so the numbers sent are the image's own.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "spoton.token"; // shared with the overlay page
const JOB_POLL_MS = 500;
const GRID_SAMPLES = 40; // points per grid line mapped through the homography (lines bend near the horizon)

const $ = (id) => document.getElementById(id);
// What the page holds, for people (drawn) and for tests (window.spotonSites).
const state = window.spotonSites = {
  role: null, sites: [], site: null, camera: null, busy: 0, jobs: {},
  calib: null, // {imagePoints, mapPoints, pending, report, region, zone, snapshot, plan}
  scalePoints: [], planFile: null, planImage: null,
};

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }
function canEdit() { return state.role === "operator" || state.role === "admin"; }

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function errorText(status, body) {
  const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body);
  return `${status}: ${detail}`;
}

async function api(path, options = {}) {
  state.busy += 1;
  try {
    const response = await fetch(API + path, {
      ...options, headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json",
                             ...(options.headers || {}) },
    });
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : (response.ok ? await response.blob() : {});
    if (!response.ok) {
      const error = new Error(errorText(response.status, body));
      error.status = response.status;
      throw error;
    }
    return body;
  } finally {
    state.busy -= 1;
  }
}

const sitePath = (site = state.site.name) => `/sites/${encodeURIComponent(site)}`;
const cameraPath = (camera = state.camera) => `${sitePath()}/cameras/${encodeURIComponent(camera)}`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function button(text, onclick, className = "") { return el("button", { type: "button", onclick, className }, text); }

async function imageFrom(blob) {
  const url = URL.createObjectURL(blob);
  const image = new Image();
  image.src = url;
  await image.decode();
  return image;
}

function setUrl() {
  const params = new URLSearchParams();
  if (state.site) params.set("site", state.site.name);
  if (state.camera) params.set("camera", state.camera);
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

// --- geometry ---------------------------------------------------------------------------------
function apply(h, [x, y]) {
  const w = h[2][0] * x + h[2][1] * y + h[2][2];
  return [(h[0][0] * x + h[0][1] * y + h[0][2]) / w, (h[1][0] * x + h[1][1] * y + h[1][2]) / w, w];
}

function invert(m) {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [[A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
          [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
          [C / det, -(a * h - b * g) / det, (a * e - b * d) / det]];
}

function planToMetres([px, py], plan = state.site.floor_plan) {
  const [ox, oy] = plan.origin_m, m = plan.metres_per_pixel;
  return [ox + px * m, plan.y_axis === "up" ? oy - py * m : oy + py * m];
}

function metresToPlan([x, y], plan = state.site.floor_plan) {
  const [ox, oy] = plan.origin_m, m = plan.metres_per_pixel;
  return [(x - ox) / m, plan.y_axis === "up" ? (oy - y) / m : (y - oy) / m];
}

function canvasPoint(canvas, event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

const round = (v, digits = 1) => Number(v.toFixed(digits));

// --- sites --------------------------------------------------------------------------------------
async function loadSites() {
  try {
    const [{ role }, { sites }] = await Promise.all([api("/me"), api("/sites")]);
    state.role = role;
    state.sites = sites;
    document.body.classList.toggle("can-edit", canEdit());
    $("role").textContent = `role: ${role}${canEdit() ? "" : " (read-only)"}`;
    renderSites();
    say(`${sites.length} site${sites.length === 1 ? "" : "s"}`);
  } catch (error) {
    say(`could not list the sites: ${error.message}`, true);
  }
}

function renderSites() {
  const rows = state.sites.map((site) => el("tr", { "data-site": site.name },
    el("td", {}, button(site.name, () => openSite(site.name), "open link")),
    el("td", {}, String(site.cameras.length)), el("td", {}, String(site.zones.length)),
    el("td", {}, String(site.version)),
    el("td", {}, button("Rename", () => renameSite(site.name), "edit rename"),
       button("Delete", () => deleteSite(site.name), "edit delete danger"))));
  $("sites").tBodies[0].replaceChildren(...rows);
}

async function renameSite(name) {
  const to = prompt(`New name for site ${name}`, name);
  if (!to || to === name) return;
  try {
    await api(`${sitePath(name)}/rename`, { method: "POST", body: JSON.stringify({ name: to }) });
    say(`site ${name} renamed to ${to}`);
    if (state.site && state.site.name === name) await openSite(to);
    await loadSites();
  } catch (error) {
    say(`could not rename ${name}: ${error.message}`, true);
  }
}

async function deleteSite(name) {
  if (!confirm(`Delete site ${name}? Its versions, videos and tables are kept; restore a version to undo.`)) return;
  try {
    await api(sitePath(name), { method: "DELETE" });
    say(`site ${name} deleted (its history is kept)`);
    if (state.site && state.site.name === name) closeSite();
    await loadSites();
  } catch (error) {
    say(`could not delete ${name}: ${error.message}`, true);
  }
}

// The new-site form: the chosen plan is drawn so two clicks on it give the scale.
async function choosePlan() {
  const file = $("create-plan").files[0];
  state.planFile = file || null;
  state.scalePoints = [];
  state.planImage = file ? await imageFrom(file).catch(() => null) : null;
  if (file && !state.planImage) say(`${file.name} is not an image this browser can show`, true);
  drawCreateCanvas();
}

function drawCreateCanvas() {
  const canvas = $("create-canvas"), image = state.planImage;
  canvas.width = image ? image.naturalWidth : 0;
  canvas.height = image ? image.naturalHeight : 0;
  if (!image) return;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(image, 0, 0);
  const points = state.scalePoints;
  ctx.strokeStyle = ctx.fillStyle = "#e33";
  ctx.lineWidth = 3;
  if (points.length === 2) {
    ctx.beginPath();
    ctx.moveTo(...points[0]);
    ctx.lineTo(...points[1]);
    ctx.stroke();
  }
  points.forEach(([x, y]) => { ctx.beginPath(); ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.fill(); });
  $("create-points").textContent = points.length === 2
    ? `points (${points.map((p) => p.map((v) => round(v)).join(", ")).join(") to (")}): ` +
      `${round(Math.hypot(points[1][0] - points[0][0], points[1][1] - points[0][1]))} px apart`
    : `click ${2 - points.length} more point${points.length === 1 ? "" : "s"} on the plan below`;
}

function clickCreateCanvas(event) {
  if (state.scalePoints.length === 2) state.scalePoints = [];
  state.scalePoints.push(canvasPoint($("create-canvas"), event));
  document.querySelector("input[name=scale-mode][value=points]").checked = true;
  drawCreateCanvas();
}

async function createSite(event) {
  event.preventDefault();
  const file = state.planFile;
  const params = new URLSearchParams({ name: $("create-name").value.trim(), origin_m: $("create-origin").value.trim(),
                                       y_axis: $("create-y-axis").value, segment_length_s: $("create-segment").value });
  const mode = document.querySelector("input[name=scale-mode]:checked").value;
  if (mode === "points") {
    if (state.scalePoints.length !== 2 || !$("create-distance").value) {
      say("for the scale, click two points on the plan and type the metres between them (or give metres per pixel)", true);
      return;
    }
    params.set("scale_points", state.scalePoints.flat().map((v) => round(v, 2)).join(","));
    params.set("distance_m", $("create-distance").value);
  } else {
    params.set("metres_per_pixel", $("create-mpp").value);
  }
  try {
    const site = await api(`/sites?${params}`, { method: "POST", body: file,
                                                 headers: { "Content-Type": file.type || "application/octet-stream" } });
    say(`site ${site.name} created (version ${site.version}, ${round(site.floor_plan.metres_per_pixel, 4)} m per pixel)`);
    $("create-form").reset();
    state.scalePoints = [];
    state.planImage = state.planFile = null;
    drawCreateCanvas();
    $("create").open = false;
    await loadSites();
    await openSite(site.name);
  } catch (error) {
    say(`could not create the site: ${error.message}`, true);
  }
}

// --- one site: cameras, uploads, zones, versions ---------------------------------------------
function closeSite() {
  state.site = state.camera = state.calib = null;
  $("site-section").hidden = $("calib-section").hidden = true;
  setUrl();
}

async function openSite(name) {
  try {
    state.site = await api(sitePath(name));
  } catch (error) {
    say(`could not open site ${name}: ${error.message}`, true);
    return;
  }
  if (state.camera && !state.site.cameras.some((c) => c.name === state.camera)) closeCalibration();
  $("site-section").hidden = false;
  renderSite();
  setUrl();
  loadJobs();
}

async function reloadSite() {
  state.site = await api(sitePath());
  renderSite();
}

function renderSite() {
  const site = state.site;
  $("site-name").textContent = site.name;
  $("site-version").textContent = `version ${site.version}, ${round(site.floor_plan.metres_per_pixel, 4)} m/px`;
  $("camera-table").tBodies[0].replaceChildren(...site.cameras.map((camera) => el("tr", { "data-camera": camera.name },
    el("td", {}, camera.name),
    el("td", {}, camera.source ? `${camera.source.kind}: ${camera.source.uri}` : "–"),
    el("td", {}, camera.enabled ? "yes" : "no"),
    el("td", { className: "rms" }, camera.calibrated ? `RMS ${camera.calibration_rms_m.toFixed(3)} m` : "not calibrated"),
    el("td", {}, String(camera.sub_videos.length)),
    el("td", {}, button("Calibrate", () => openCalibration(camera.name), "calibrate"),
       button("Rename", () => renameCamera(camera.name), "edit rename"),
       button(camera.enabled ? "Disable" : "Enable", () => enableCamera(camera.name, !camera.enabled), "edit enable"),
       button("Delete", () => deleteCamera(camera.name), "edit delete danger")))));
  $("zones").replaceChildren(...site.zones.map((zone) => el("li", { "data-zone": zone.name },
    `${zone.name}: ${zone.polygon_m.length} corners `, button("Delete", () => deleteZone(zone.name), "edit delete"))));
  $("versions").replaceChildren(...[...site.versions].reverse().map((version) => el("li", { "data-version": version },
    `version ${version}`, version === site.version ? " (current)"
      : button("Restore", () => restoreVersion(version), "edit restore"))));
  if (state.calib) drawCalibration();
}

async function edit(what, request) {
  try {
    await request();
    say(what);
    await reloadSite();
    await loadSites();
  } catch (error) {
    say(`${what.split(" ")[0]} failed: ${error.message}`, true);
  }
}

function renameCamera(name) {
  const to = prompt(`New name for camera ${name}`, name);
  if (!to || to === name) return;
  edit(`renamed camera ${name} to ${to}`, async () => {
    await api(`${cameraPath(name)}/rename`, { method: "POST", body: JSON.stringify({ name: to }) });
    if (state.camera === name) closeCalibration();
  });
}

function enableCamera(name, enabled) {
  edit(`${enabled ? "enabled" : "disabled"} camera ${name}`, () =>
    api(`${cameraPath(name)}/enabled`, { method: "PUT", body: JSON.stringify({ enabled }) }));
}

function deleteCamera(name) {
  if (!confirm(`Delete camera ${name} from ${state.site.name}? (earlier versions keep it)`)) return;
  edit(`deleted camera ${name}`, async () => {
    await api(cameraPath(name), { method: "DELETE" });
    if (state.camera === name) closeCalibration();
  });
}

function deleteZone(name) {
  edit(`deleted zone ${name}`, () => api(`${sitePath()}/zones/${encodeURIComponent(name)}`, { method: "DELETE" }));
}

function restoreVersion(version) {
  edit(`restored version ${version} (as a new version)`, () =>
    api(`${sitePath()}/versions/${version}/restore`, { method: "POST" }));
}

function uriBody() {
  return { kind: $("uri-kind").value, uri: $("uri-uri").value.trim() };
}

async function testConnection() {
  const result = $("test-result"), img = $("test-snapshot");
  result.textContent = "testing…";
  result.className = "";
  img.hidden = true;
  try {
    const jpeg = await api(`${sitePath()}/cameras/test`, { method: "POST", body: JSON.stringify(uriBody()) });
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(jpeg);
    img.hidden = false;
    result.textContent = "connected: one frame read";
    result.className = "ok";
  } catch (error) {
    result.textContent = `no connection: ${error.message}`;
    result.className = "error";
  }
}

async function addUriCamera(event) {
  event.preventDefault();
  const body = { name: $("uri-name").value.trim(), ...uriBody() };
  if ($("uri-fps").value) body.fps = Number($("uri-fps").value);
  await edit(`added camera ${body.name}`, async () => {
    await api(`${sitePath()}/cameras`, { method: "POST", body: JSON.stringify(body) });
    $("uri-form").reset();
    $("test-snapshot").hidden = true;
    $("test-result").textContent = "";
  });
}

// Uploads: the raw file goes up with a progress bar (XHR reports upload progress, fetch does not),
// then the site's job is followed (queued, processing with its stage and progress, done or failed).
function sendFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", API + url);
    xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (event) => { if (event.lengthComputable) onProgress(event.loaded / event.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new Error("network error while uploading"));
    xhr.send(file);
  });
}

function jobRow(id) {
  let row = document.querySelector(`#jobs li[data-job="${CSS.escape(id)}"]`);
  if (!row) {
    row = el("li", { "data-job": id }, el("span", { className: "job-label" }), " ",
             el("progress", { max: "1", value: "0" }), " ", el("span", { className: "job-reason" }));
    $("jobs").prepend(row);
  }
  return row;
}

function showJob(job) {
  state.jobs[job.id] = job;
  const row = jobRow(job.id);
  row.dataset.state = job.state;
  const stage = job.state === "processing" && job.stage ? ` (${job.stage})` : "";
  const segments = job.state === "done" && job.segments !== null && job.segments !== undefined
    ? `, ${job.segments} sub-videos` : "";
  row.querySelector(".job-label").textContent = `${job.camera}: ${job.state}${stage}${segments}`;
  row.querySelector("progress").value = job.state === "done" ? 1 : job.progress || 0;
  row.querySelector(".job-reason").textContent = job.reason || "";
  row.classList.toggle("error", job.state === "failed");
}

async function followJob(job) {
  showJob(job);
  while (job.state === "queued" || job.state === "processing") {
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    try {
      job = await api(job.url.replace(API, ""));
    } catch (error) {
      say(`lost track of the upload of ${job.camera}: ${error.message}`, true);
      return;
    }
    showJob(job);
  }
  if (job.state === "done") {
    say(`camera ${job.camera} added from the upload${job.segments ? ` (${job.segments} sub-videos)` : ""}`);
    if (state.site && state.site.name === job.site) await reloadSite();
    await loadSites();
  } else {
    say(`the upload of ${job.camera} failed: ${job.reason}`, true);
  }
}

async function loadJobs() {
  try {
    const { jobs } = await api(`${sitePath()}/jobs`);
    $("jobs").replaceChildren();
    jobs.slice().reverse().forEach((job) => (job.state === "queued" || job.state === "processing"
      ? followJob(job) : showJob(job)));
  } catch {
    $("jobs").replaceChildren(); // a server without site jobs: nothing to show
  }
}

async function uploadCamera(event) {
  event.preventDefault();
  const name = $("upload-name").value.trim(), file = $("upload-file").files[0], fps = $("upload-fps").value;
  const local = { id: `sending-${name}`, camera: name, site: state.site.name, state: "processing", progress: 0,
                  stage: "sending", reason: null };
  const sending = (fraction) => showJob({ ...local, progress: fraction });
  sending(0);
  try {
    const query = new URLSearchParams({ name, ...(fps ? { fps } : {}) });
    const answer = await sendFile(`${sitePath()}/cameras/upload?${query}`, file, sending);
    if (answer.status !== 202) throw new Error(errorText(answer.status, answer.body));
    jobRow(local.id).remove();
    $("upload-form").reset();
    await followJob(answer.body);
  } catch (error) {
    showJob({ ...local, state: "failed", reason: error.message });
    say(`could not upload ${name}: ${error.message}`, true);
  }
}

// --- calibration ------------------------------------------------------------------------------
function closeCalibration() {
  state.camera = state.calib = null;
  $("calib-section").hidden = true;
  setUrl();
}

async function openCalibration(name) {
  const camera = state.site.cameras.find((c) => c.name === name);
  const saved = camera.calibration;
  state.camera = name;
  state.calib = {
    imagePoints: saved ? saved.image_points.map((p) => [...p]) : [],
    mapPoints: saved ? saved.map_points.map((p) => [...p]) : [],
    pending: null, report: null, h: saved ? saved.image_to_map : null, region: [], zone: [],
    snapshot: null, plan: null,
  };
  $("calib-camera").textContent = `${name} of ${state.site.name}`;
  $("calib-section").hidden = false;
  setUrl();
  message("loading the snapshot and the plan…");
  try {
    const [snapshot, plan] = await Promise.all([
      api(`${cameraPath(name)}/snapshot`), api(state.site.floor_plan.image_url.replace(API, ""))]);
    state.calib.snapshot = await imageFrom(snapshot);
    state.calib.plan = await imageFrom(plan);
  } catch (error) {
    message(`could not load the snapshot or the plan: ${error.message}`, true);
    return;
  }
  message(saved ? `the saved calibration: ${saved.image_points.length} pairs` :
    "click a point on the snapshot, then the same point on the plan; at least 4 pairs");
  drawCalibration();
  if (saved) checkPairs();
}

function message(text, isError = false) {
  $("calib-message").textContent = text;
  $("calib-message").classList.toggle("error", isError);
}

function mode() { return $("mode").value; }

function clickImage(event) {
  const calib = state.calib;
  if (!calib || !calib.snapshot) return;
  const point = canvasPoint($("image-canvas"), event).map((v) => round(v, 1));
  if (mode() === "region") {
    calib.region.push(point);
    message(`region: ${calib.region.length} corners (at least 3), then Save region`);
  } else if (mode() === "points") {
    calib.pending = point;
    message(`image point (${point.join(", ")}): now click the same point on the plan`);
  }
  drawCalibration();
}

function clickPlan(event) {
  const calib = state.calib;
  if (!calib || !calib.plan) return;
  const metres = planToMetres(canvasPoint($("plan-canvas"), event)).map((v) => round(v, 3));
  if (mode() === "zone") {
    calib.zone.push(metres);
    message(`zone: ${calib.zone.length} corners (at least 3), name it, then Save zone`);
  } else if (mode() === "points") {
    if (!calib.pending) {
      message("click the point on the snapshot first, then its place on the plan", true);
      return;
    }
    calib.imagePoints.push(calib.pending);
    calib.mapPoints.push(metres);
    calib.pending = null;
    checkPairs();
  }
  drawCalibration();
}

// After each pair: fewer than 4 is said here, the rest (collinear, over the threshold) by the server.
async function checkPairs() {
  const calib = state.calib, n = calib.imagePoints.length;
  calib.report = null;
  renderPairs();
  if (n < 4) {
    calib.h = null;
    $("rms").textContent = "–";
    $("max-error").textContent = "";
    message(n ? `${n} pair${n === 1 ? "" : "s"}: at least 4 are needed for a calibration` :
      "click a point on the snapshot, then the same point on the plan; at least 4 pairs", n > 0);
    drawCalibration();
    return;
  }
  const body = JSON.stringify({ image_points: calib.imagePoints, map_points: calib.mapPoints });
  try {
    const report = await api(`${cameraPath()}/calibration/check`, { method: "POST", body });
    if (calib !== state.calib || calib.imagePoints.length !== n) return; // points changed meanwhile
    calib.report = report;
    calib.h = report.image_to_map;
    $("rms").textContent = `${report.rms_error_m.toFixed(3)} m`;
    $("max-error").textContent = `(largest ${report.max_error_m.toFixed(3)} m over ${n} pairs)`;
    message(`${n} pairs fit: check that the grid lies flat on the floor, then Save calibration`);
  } catch (error) {
    if (calib !== state.calib || calib.imagePoints.length !== n) return;
    calib.h = null;
    $("rms").textContent = "refused";
    $("max-error").textContent = "";
    message(`refused: ${error.message}`, true);
  }
  renderPairs();
  drawCalibration();
}

function renderPairs() {
  const calib = state.calib, errors = calib.report ? calib.report.point_errors_m : [];
  $("pairs").tBodies[0].replaceChildren(...calib.imagePoints.map((p, i) => el("tr", {},
    el("td", {}, String(i + 1)), el("td", {}, p.join(", ")), el("td", {}, calib.mapPoints[i].join(", ")),
    el("td", {}, errors[i] === undefined ? "–" : errors[i].toFixed(3)))));
  $("save-calibration").disabled = !calib.report;
  $("save-region").disabled = calib.region.length < 3;
  $("save-zone").disabled = calib.zone.length < 3;
}

function undo() {
  const calib = state.calib;
  if (!calib) return;
  if (mode() === "region") calib.region.pop();
  else if (mode() === "zone") calib.zone.pop();
  else if (calib.pending) calib.pending = null;
  else if (calib.imagePoints.length) {
    calib.imagePoints.pop();
    calib.mapPoints.pop();
    checkPairs();
  }
  renderPairs();
  drawCalibration();
}

function clear() {
  const calib = state.calib;
  if (!calib) return;
  if (mode() === "region") calib.region = [];
  else if (mode() === "zone") calib.zone = [];
  else {
    calib.imagePoints = [];
    calib.mapPoints = [];
    calib.pending = null;
    checkPairs();
  }
  renderPairs();
  drawCalibration();
}

async function saveCalibration() {
  const calib = state.calib;
  try {
    const saved = await api(`${cameraPath()}/calibration`, { method: "PUT",
      body: JSON.stringify({ image_points: calib.imagePoints, map_points: calib.mapPoints }) });
    message(`calibration saved as version ${saved.version} (RMS ${saved.rms_error_m.toFixed(3)} m)`);
    say(`saved the calibration of ${state.camera}: version ${saved.version}`);
    await reloadSite();
    await loadSites();
  } catch (error) {
    message(`not saved: ${error.message}`, true);
  }
}

async function saveRegion() {
  const calib = state.calib;
  try {
    const saved = await api(`${cameraPath()}/region`, { method: "PUT", body: JSON.stringify({ polygon: calib.region }) });
    calib.region = [];
    message(`region saved as version ${saved.version}`);
    await reloadSite();
  } catch (error) {
    message(`region not saved: ${error.message}`, true);
  }
}

async function saveZone() {
  const calib = state.calib, name = $("zone-name").value.trim();
  try {
    const saved = await api(`${sitePath()}/zones`, { method: "PUT",
      body: JSON.stringify({ name, polygon_m: calib.zone }) });
    calib.zone = [];
    message(`zone ${name} saved as version ${saved.version}`);
    await reloadSite();
    await loadSites();
  } catch (error) {
    message(`zone not saved: ${error.message}`, true);
  }
}

function dot(ctx, [x, y], colour, label, radius) {
  ctx.fillStyle = colour;
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fill();
  if (label) {
    ctx.fillStyle = "#fff";
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 3;
    ctx.strokeText(label, x + radius + 2, y - radius);
    ctx.fillText(label, x + radius + 2, y - radius);
  }
}

function polygon(ctx, points, colour, fill, closed = true) {
  if (!points.length) return;
  ctx.beginPath();
  ctx.moveTo(...points[0]);
  points.slice(1).forEach((p) => ctx.lineTo(...p));
  if (closed) ctx.closePath();
  ctx.strokeStyle = colour;
  ctx.lineWidth = 2;
  ctx.stroke();
  if (fill) {
    ctx.fillStyle = fill;
    ctx.fill();
  }
}

// The plan's metre grid seen through map->image (the inverse of image_to_map): each line sampled,
// segments behind the camera (w <= 0) or far outside the frame left out.
function drawGrid(ctx, h, width, height) {
  const toImage = invert(h), plan = state.site.floor_plan;
  const [w, hgt] = plan.size_px;
  const [x0, y0] = planToMetres([0, 0]), [x1, y1] = planToMetres([w, hgt]);
  const [xmin, xmax, ymin, ymax] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
  const step = Math.max(1, Math.ceil(Math.max(xmax - xmin, ymax - ymin) / 80));
  const lines = [];
  for (let x = Math.ceil(xmin / step) * step; x <= xmax; x += step) lines.push([[x, ymin], [x, ymax], x]);
  for (let y = Math.ceil(ymin / step) * step; y <= ymax; y += step) lines.push([[xmin, y], [xmax, y], y]);
  const inside = ([u, v, s]) => s > 0 && u > -width && u < 2 * width && v > -height && v < 2 * height;
  ctx.lineWidth = 1;
  for (const [[ax, ay], [bx, by], value] of lines) {
    ctx.strokeStyle = value % (5 * step) === 0 ? "rgba(0, 255, 255, 0.9)" : "rgba(0, 255, 255, 0.45)";
    ctx.beginPath();
    let drawing = false;
    for (let i = 0; i <= GRID_SAMPLES; i++) {
      const t = i / GRID_SAMPLES;
      const p = apply(toImage, [ax + (bx - ax) * t, ay + (by - ay) * t]);
      if (!inside(p)) { drawing = false; continue; }
      if (drawing) ctx.lineTo(p[0], p[1]); else ctx.moveTo(p[0], p[1]);
      drawing = true;
    }
    ctx.stroke();
  }
  state.calib.gridLines = lines.length;
}

function drawCalibration() {
  const calib = state.calib;
  if (!calib || !calib.snapshot || !calib.plan) return;
  const camera = state.site.cameras.find((c) => c.name === state.camera);
  // the snapshot, the grid, the saved region (metres -> image) and the one being drawn, the clicked points
  const image = $("image-canvas"), ictx = image.getContext("2d");
  image.width = calib.snapshot.naturalWidth;
  image.height = calib.snapshot.naturalHeight;
  ictx.drawImage(calib.snapshot, 0, 0);
  const radius = Math.max(4, image.width / 150);
  ictx.font = `${Math.round(radius * 3)}px sans-serif`;
  if (calib.h) drawGrid(ictx, calib.h, image.width, image.height);
  const h = calib.h || (camera && camera.calibration && camera.calibration.image_to_map);
  if (camera && camera.region_m && h) {
    const toImage = invert(h);
    polygon(ictx, camera.region_m.map((p) => apply(toImage, p)), "#ff0", "rgba(255, 255, 0, 0.15)");
  }
  polygon(ictx, calib.region, "#f80", "rgba(255, 136, 0, 0.2)", calib.region.length >= 3);
  calib.imagePoints.forEach((p, i) => dot(ictx, p, "#f33", String(i + 1), radius));
  if (calib.pending) dot(ictx, calib.pending, "#3f3", String(calib.imagePoints.length + 1), radius);
  // the plan: zones, the zone being drawn, the clicked map points
  const plan = $("plan-canvas"), pctx = plan.getContext("2d");
  plan.width = calib.plan.naturalWidth;
  plan.height = calib.plan.naturalHeight;
  pctx.drawImage(calib.plan, 0, 0);
  const planRadius = Math.max(4, plan.width / 150);
  pctx.font = `${Math.round(planRadius * 3)}px sans-serif`;
  for (const zone of state.site.zones) {
    const corners = zone.polygon_m.map((p) => metresToPlan(p));
    polygon(pctx, corners, "#c0f", "rgba(200, 0, 255, 0.15)");
    dot(pctx, corners[0], "#c0f", zone.name, 2);
  }
  polygon(pctx, calib.zone.map((p) => metresToPlan(p)), "#f80", "rgba(255, 136, 0, 0.2)", calib.zone.length >= 3);
  calib.mapPoints.forEach((p, i) => dot(pctx, metresToPlan(p), "#f33", String(i + 1), planRadius));
  renderPairs();
}

// --- start ------------------------------------------------------------------------------------
async function init() {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, fromUrl);
    params.delete("token"); // keep the token out of the address bar
    history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
  }
  $("token").value = token();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token").value.trim());
    loadSites();
  });
  $("create-plan").addEventListener("change", choosePlan);
  $("create-canvas").addEventListener("click", clickCreateCanvas);
  $("create-form").addEventListener("submit", createSite);
  $("uri-test").addEventListener("click", testConnection);
  $("uri-form").addEventListener("submit", addUriCamera);
  $("upload-form").addEventListener("submit", uploadCamera);
  $("image-canvas").addEventListener("click", clickImage);
  $("plan-canvas").addEventListener("click", clickPlan);
  $("mode").addEventListener("change", () => { document.body.dataset.mode = mode(); drawCalibration(); });
  document.body.dataset.mode = mode();
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clear);
  $("save-calibration").addEventListener("click", saveCalibration);
  $("save-region").addEventListener("click", saveRegion);
  $("save-zone").addEventListener("click", saveZone);
  if (!token()) return;
  await loadSites();
  const site = params.get("site"), camera = params.get("camera");
  if (site && state.sites.some((s) => s.name === site)) {
    await openSite(site);
    if (camera && state.site.cameras.some((c) => c.name === camera)) await openCalibration(camera);
  }
}

init();
