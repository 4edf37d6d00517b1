// imx500-sam serve: the page. Plain JavaScript, no library; everything goes through the JSON API.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
const img = $("stream");
const canvas = $("draw");
const ctx = canvas.getContext("2d");
let state = null;
let drag = null; // {x0, y0, x1, y1} in canvas pixels while dragging
let errorTimer = null;

function url(path) {
  return token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(url(path), opts);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || `${method} ${path}: HTTP ${resp.status}`);
  return data;
}

function showError(text) {
  $("error").textContent = text;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { $("error").textContent = ""; }, 5000);
}

const fmt = (v, unit, digits = 1) => (v === null || v === undefined ? "–" : `${v.toFixed(digits)} ${unit}`);

// ------------------------------------------------------------------ the stream and the drawing layer

function startStream() {
  const path = state.masks_only ? "masks.mjpg" : "stream.mjpg";
  document.querySelector("main").style.setProperty("--aspect", String(state.stream_size[0] / state.stream_size[1]));
  img.src = url(path);
}
img.addEventListener("error", () => setTimeout(() => state && startStream(), 2000));

function streamScale() {
  // stream pixels per canvas pixel
  const [w, h] = state ? state.stream_size : [img.naturalWidth || 1, img.naturalHeight || 1];
  return [w / canvas.width, h / canvas.height];
}

function fitCanvas() {
  const r = img.getBoundingClientRect();
  if (canvas.width !== Math.round(r.width) || canvas.height !== Math.round(r.height)) {
    canvas.width = Math.round(r.width);
    canvas.height = Math.round(r.height);
  }
}

function redraw() {
  fitCanvas();
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state) {
    const [sx, sy] = streamScale();
    ctx.font = "12px system-ui, sans-serif";
    for (const p of state.prompts) {
      const [x, y, w, h] = p.box;
      ctx.strokeStyle = p.colour;
      ctx.lineWidth = 1.5;
      ctx.setLineDash([5, 4]);
      ctx.strokeRect(x / sx, y / sy, w / sx, h / sy);
      ctx.setLineDash([]);
      ctx.fillStyle = p.colour;
      ctx.fillText(`#${p.id}${p.lost ? " lost" : ""}`, x / sx + 3, Math.max(12, y / sy - 4));
    }
  }
  if (drag) {
    const x = Math.min(drag.x0, drag.x1), y = Math.min(drag.y0, drag.y1);
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    ctx.strokeRect(x, y, Math.abs(drag.x1 - drag.x0), Math.abs(drag.y1 - drag.y0));
    ctx.setLineDash([]);
  }
}

function point(ev) {
  const r = canvas.getBoundingClientRect();
  return [Math.min(Math.max(ev.clientX - r.left, 0), r.width), Math.min(Math.max(ev.clientY - r.top, 0), r.height)];
}

canvas.addEventListener("pointerdown", (ev) => {
  if (!state) return;
  const [x, y] = point(ev);
  drag = { x0: x, y0: y, x1: x, y1: y };
  canvas.setPointerCapture(ev.pointerId);
  ev.preventDefault();
});
canvas.addEventListener("pointermove", (ev) => {
  if (!drag) return;
  [drag.x1, drag.y1] = point(ev);
  redraw();
});
canvas.addEventListener("pointerup", async (ev) => {
  if (!drag) return;
  [drag.x1, drag.y1] = point(ev);
  const d = drag;
  drag = null;
  redraw();
  const w = Math.abs(d.x1 - d.x0), h = Math.abs(d.y1 - d.y0);
  if (w < 4 || h < 4) return; // a click, not a box
  const [sx, sy] = streamScale();
  const box = [Math.min(d.x0, d.x1) * sx, Math.min(d.y0, d.y1) * sy, w * sx, h * sy].map((v) => Math.round(v * 10) / 10);
  try {
    await api("POST", "api/prompts", { box });
    await refresh();
  } catch (e) {
    showError(e.message);
  }
});
canvas.addEventListener("pointercancel", () => { drag = null; redraw(); });

// ------------------------------------------------------------------ the panel

function renderPrompts() {
  const list = $("prompts");
  $("count").textContent = `${state.prompts.length} / ${state.max_prompts}`;
  if (!state.prompts.length) {
    list.innerHTML = '<li class="empty">No prompt yet: drag a box on the image.</li>';
    return;
  }
  const ids = state.prompts.map((p) => String(p.id)).join(",");
  if (list.dataset.ids !== ids) {
    list.dataset.ids = ids;
    list.innerHTML = "";
    for (const p of state.prompts) {
      const li = document.createElement("li");
      li.dataset.id = p.id;
      li.innerHTML = `<span class="swatch"></span><span class="pinfo"><b>#${p.id}</b> <span class="st"></span>` +
        `<small class="meta"></small></span>` +
        `<a class="button mask" title="this prompt's mask as PNG" download>⤓</a>` +
        `<button type="button" class="remove" title="remove this prompt">✕</button>`;
      li.querySelector(".swatch").style.background = p.colour;
      li.querySelector(".mask").href = url(`api/prompts/${p.id}/mask.png`);
      li.querySelector(".remove").addEventListener("click", async () => {
        try { await api("DELETE", `api/prompts/${p.id}`); await refresh(); } catch (e) { showError(e.message); }
      });
      list.appendChild(li);
    }
  }
  for (const p of state.prompts) {
    const li = list.querySelector(`li[data-id="${p.id}"]`);
    const st = li.querySelector(".st");
    st.textContent = p.mask_frame === null ? "waiting" : p.lost ? "lost" : p.track ? "tracking" : "";
    st.className = "st" + (p.lost ? " lost" : "");
    const first = p.first_mask_ms === null ? "" : ` · first mask ${p.first_mask_ms.toFixed(0)} ms`;
    li.querySelector(".meta").textContent = `mask ${p.mask_area} px · ROI ${p.roi[2]} px${first}`;
  }
}

function renderState() {
  $("network").textContent = `network ${state.network}`;
  $("mode").textContent = state.masks_only ? "masks only: no frame leaves the device" : `${state.source}`;
  $("mode").className = "badge" + (state.masks_only ? " private" : "");
  $("k-dnn").textContent = fmt(state.dnn_ms, "ms", 2);
  $("k-dsp").textContent = fmt(state.dsp_ms, "ms", 2);
  $("k-fps").textContent = state.fps === null ? "–" : state.fps.toFixed(1);
  $("k-lat").textContent = fmt(state.latency_ms, "ms", 1);
  $("k-roi").textContent = state.roi ? `${state.roi[2]}² at ${state.roi[0]},${state.roi[1]}` : "–";
  $("k-power").textContent = state.power_w === null ? "n/a" : `${state.power_w.toFixed(2)} W`;
  $("k-power").title = state.power_note || "";
  $("k-frame").textContent = state.frame === null ? "–" : String(state.frame);
  $("track").checked = state.track;
  const dl = $("dl-overlay");
  dl.href = url("api/overlay.jpg");
  dl.classList.toggle("disabled", state.masks_only);
  $("dl-note").textContent = state.masks_only ? "Masks-only mode: frames are never encoded or served." : "";
  renderPrompts();
  redraw();
}

async function refresh() {
  try {
    const first = state === null;
    state = await api("GET", "api/state");
    $("conn").textContent = "live";
    $("conn").className = "badge on";
    if (first) startStream();
    renderState();
  } catch (e) {
    $("conn").textContent = "disconnected";
    $("conn").className = "badge off";
  }
}

$("track").addEventListener("change", async (ev) => {
  try { await api("PUT", "api/track", { track: ev.target.checked }); await refresh(); } catch (e) { showError(e.message); }
});
$("clear").addEventListener("click", async () => {
  try { await api("DELETE", "api/prompts"); await refresh(); } catch (e) { showError(e.message); }
});
img.addEventListener("load", redraw);
window.addEventListener("resize", redraw);
refresh();
setInterval(refresh, 300);
