// "Try it in your browser": the suite's CIFAR-10 models, exported to ONNX by
// metaformer_mini/export.py, run on the reader's picture with ONNX Runtime Web (wasm, one thread).
// models/manifest.json lists the models of this build; samples/index.json the bundled test images.
import * as ort from "../onnxruntime-web/ort.wasm.min.mjs";

ort.env.wasm.wasmPaths = new URL("../onnxruntime-web/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which static hosts do not give
ort.env.logLevel = "error";

const here = (path) => new URL(path, import.meta.url).href;
const $ = (id) => document.getElementById(id);
const root = $("tryit");
const seen = $("tryit-seen");
const state = {manifest: null, model: null, sessions: new Map(), picture: null, channel: null, outputs: null,
               queue: Promise.resolve()};

// What the page did last, for whoever drives it (the browser test, the speed benchmark).
window.tryit = {last: null, runs: 0};

async function readJSON(path) {
  const response = await fetch(here(path));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function setStatus(text, status) {
  $("tryit-status").textContent = text;
  if (status) root.dataset.status = status;
}

// --- the picture: any image, cut to a centred square and drawn at the model's size -----------

function drawPicture(image, width, height, caption) {
  const size = state.manifest.models.find((m) => m.row === state.model)?.img_size ?? 32;
  seen.width = seen.height = size;
  const ctx = seen.getContext("2d", {willReadFrequently: true});
  const side = Math.min(width, height);
  ctx.imageSmoothingEnabled = side !== size; // a 32x32 test image is copied pixel for pixel
  ctx.imageSmoothingQuality = "high";
  ctx.clearRect(0, 0, size, size);
  ctx.drawImage(image, (width - side) / 2, (height - side) / 2, side, side, 0, 0, size, size);
  state.picture = caption;
  $("tryit-caption").textContent = `${caption.text} (${size}x${size})`;
  return classify();
}

async function showSample(sample, button) {
  document.querySelectorAll(".tryit-gallery button").forEach((b) => b.setAttribute("aria-pressed", b === button));
  const image = new Image();
  image.src = here(`samples/${sample.file}`);
  await image.decode();
  return drawPicture(image, image.naturalWidth, image.naturalHeight,
                     {text: `a test ${sample.class}`, file: sample.file, label: sample.label});
}

async function showFile(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus(`${file ? file.name : "That"} is not an image: drop a JPEG, PNG, WebP or GIF file.`, "done");
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    setStatus(`${file.name} could not be decoded as an image.`, "done");
    return;
  }
  document.querySelectorAll(".tryit-gallery button").forEach((b) => b.setAttribute("aria-pressed", false));
  await drawPicture(bitmap, bitmap.width, bitmap.height, {text: `your picture, ${file.name}`, file: null, label: null});
  bitmap.close();
}

// --- the model ---------------------------------------------------------------------------------

async function session(row) {
  if (!state.sessions.has(row)) {
    const entry = state.manifest.models.find((m) => m.row === row);
    const start = performance.now();
    const created = fetch(here(`models/${entry.file}`))
      .then((r) => { if (!r.ok) throw new Error(`models/${entry.file}: HTTP ${r.status}`); return r.arrayBuffer(); })
      .then((bytes) => ort.InferenceSession.create(bytes, {executionProviders: ["wasm"]}))
      .then((s) => ({session: s, loadMs: performance.now() - start, runs: 0}));
    state.sessions.set(row, created);
  }
  return state.sessions.get(row);
}

// The image as the graph takes it: (1, 3, S, S) RGB in [0, 1]; the graph normalizes it itself.
function inputTensor() {
  const size = seen.width;
  const rgba = seen.getContext("2d", {willReadFrequently: true}).getImageData(0, 0, size, size).data;
  const data = new Float32Array(3 * size * size);
  for (let i = 0; i < size * size; i++) {
    for (let c = 0; c < 3; c++) data[c * size * size + i] = rgba[4 * i + c] / 255;
  }
  return new ort.Tensor("float32", data, [1, 3, size, size]);
}

function softmax(logits) {
  const top = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

// One run at a time: a click during a run waits for it.
function classify() {
  state.queue = state.queue.then(classifyNow)
    .catch((error) => setStatus(`The model could not run: ${error.message}`, "failed"));
  return state.queue;
}

async function classifyNow() {
  if (!state.picture || !state.model) return;
  const row = state.model;
  setStatus(`Running the ${row} model...`, "running");
  const loaded = await session(row);
  const start = performance.now();
  const out = await loaded.session.run({image: inputTensor()});
  const runMs = performance.now() - start;
  const first = loaded.runs === 0;
  loaded.runs += 1;
  if (row !== state.model) return; // the reader switched models meanwhile; that run reports
  const probs = softmax(out.logits.data);
  state.outputs = {input: out.mixer_input, output: out.mixer_output};
  showBars(probs);
  showTokens(true);
  const load = first ? `, after ${loaded.loadMs.toFixed(0)} ms to load the model` : "";
  setStatus(`${row}: ${runMs.toFixed(1)} ms for this image${load}.`, "done");
  window.tryit.runs += 1;
  window.tryit.last = {model: row, file: state.picture.file, probs, logits: Array.from(out.logits.data),
                       runMs, loadMs: first ? loaded.loadMs : null, first, at: performance.now()};
}

function showBars(probs) {
  const classes = state.manifest.classes;
  const order = probs.map((p, i) => i).sort((a, b) => probs[b] - probs[a]).slice(0, 5);
  const bars = $("tryit-bars");
  bars.replaceChildren(...order.map((i) => {
    const line = document.createElement("div");
    line.className = "tryit-bar" + (i === state.picture.label ? " tryit-true" : "");
    const name = document.createElement("span");
    name.textContent = classes[i] + (i === state.picture.label ? " (true class)" : "");
    const track = document.createElement("span");
    track.className = "tryit-track";
    const fill = document.createElement("span");
    fill.style.width = `${(100 * probs[i]).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.textContent = `${(100 * probs[i]).toFixed(1)}%`;
    line.append(name, track, value);
    return line;
  }));
}

// --- the stage-1 token grid before and after the mixer --------------------------------------

function channelOf(tensor, c) {
  const [, , h, w] = tensor.dims;
  return {values: tensor.data.subarray(c * h * w, (c + 1) * h * w), h, w};
}

// Blue (negative), white (zero), red (positive), on a scale shared by both grids.
function paint(canvas, {values, h, w}, scale) {
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  values.forEach((v, i) => {
    const t = Math.max(-1, Math.min(1, v / scale));
    const fade = Math.round(255 * (1 - Math.abs(t)));
    image.data.set(t >= 0 ? [255, fade, fade, 255] : [fade, fade, 255, 255], 4 * i);
  });
  ctx.putImageData(image, 0, 0);
}

// Show one channel; a new picture starts at the channel whose input grid varies most.
function showTokens(newPicture) {
  const {input, output} = state.outputs;
  const channels = input.dims[1];
  const slider = $("tryit-channel");
  slider.max = channels - 1;
  if (newPicture || state.channel === null) {
    let best = 0, bestVar = -1;
    for (let c = 0; c < channels; c++) {
      const {values} = channelOf(input, c);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0);
      if (variance > bestVar) [best, bestVar] = [c, variance];
    }
    state.channel = best;
  }
  slider.value = state.channel;
  $("tryit-channel-value").textContent = state.channel;
  const a = channelOf(input, state.channel), b = channelOf(output, state.channel);
  let scale = 1e-6;
  for (const v of a.values) scale = Math.max(scale, Math.abs(v));
  for (const v of b.values) scale = Math.max(scale, Math.abs(v));
  paint($("tryit-mixer-in"), a, scale);
  paint($("tryit-mixer-out"), b, scale);
  const mixers = state.manifest.models.find((m) => m.row === state.model).mixers;
  $("tryit-mixer-out-caption").textContent = `TokenMixer(Norm(X)), ${mixers[0]}`;
}

// --- the page ------------------------------------------------------------------------------

function modelButtons() {
  const group = root.querySelector(".tryit-models");
  group.replaceChildren(...state.manifest.models.map((m) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    Object.assign(input, {type: "radio", name: "tryit-model", value: m.row, checked: m.row === state.model});
    input.addEventListener("change", () => { state.model = m.row; classify(); });
    const top1 = m.top1 == null ? "" : ` (${m.top1.toFixed(1)}% on the test set)`;
    label.append(input, ` ${m.row}${top1}`);
    return label;
  }));
}

function gallery(samples) {
  $("tryit-gallery").replaceChildren(...samples.map((sample) => {
    const button = document.createElement("button");
    button.type = "button";
    button.title = `${sample.class} (${sample.source})`;
    button.setAttribute("aria-pressed", false);
    button.dataset.file = sample.file;
    const image = document.createElement("img");
    Object.assign(image, {src: here(`samples/${sample.file}`), alt: sample.class, width: 32, height: 32});
    button.append(image);
    button.addEventListener("click", () => showSample(sample, button));
    return button;
  }));
}

function acceptDrops() {
  const drop = $("tryit-drop");
  $("tryit-file").addEventListener("change", (event) => showFile(event.target.files[0]));
  for (const target of [drop, seen]) {
    target.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("tryit-over"); });
    target.addEventListener("dragleave", () => drop.classList.remove("tryit-over"));
    target.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("tryit-over");
      showFile(event.dataTransfer.files[0]);
    });
  }
  $("tryit-channel").addEventListener("input", (event) => {
    state.channel = Number(event.target.value);
    if (state.outputs) showTokens(false);
  });
}

async function main() {
  const [manifest, samples] = await Promise.all([readJSON("models/manifest.json"), readJSON("samples/index.json")]);
  state.manifest = manifest;
  if (!manifest.models.length) {
    setStatus("This build of the site holds no trained models: train them with " +
              "`python -m metaformer_mini.experiments run pooling` and rebuild the site.", "empty");
    return;
  }
  state.model = manifest.models[0].row;
  modelButtons();
  gallery(samples);
  acceptDrops();
  const first = document.querySelector(".tryit-gallery button");
  await showSample(samples[0], first);
}

main().catch((error) => setStatus(`The page could not start: ${error.message}`, "failed"));
