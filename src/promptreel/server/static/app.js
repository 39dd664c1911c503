// The promptreel page: a form that queues jobs, the queue with live progress, and a gallery of
// finished videos. Plain DOM code, no build step. Job data (prompts are user text) only ever
// reaches the page through textContent and properties, never through innerHTML.
"use strict";

// `#token=XYZ`: a fragment never reaches the server, its logs or a Referer header.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
// A browser opens at most six connections to one host over HTTP/1.1 and each event stream
// holds one, so only the oldest jobs are followed live; the worker runs one job at a time, and
// the others get a stream as those ahead of them end.
const MAX_STREAMS = 3;
const PAGE_SIZE = 20;
const MAX_UPLOAD_BYTES = 50 * 2 ** 20; // the server's limit, checked before sending
const STAGES = {
  load: "Loading the model",
  control: "Drawing the control images",
  encode: "Encoding the prompt",
  denoise: "Denoising",
  decode: "Decoding the frames",
  write: "Writing the video",
};
const DEFAULTS = ["num_frames", "height", "width", "num_inference_steps", "guidance_scale", "fps"];
// The file input each upload (the request's input files) is chosen with.
const UPLOADS = { image: "input-file", video: "input-file", control_video: "control-file" };

const $ = (id) => document.getElementById(id);
const form = $("job-form");
const following = new Map(); // job id -> {job, item, bar, stage, stream, clock}, oldest first
const shown = new Set(); // ids of the jobs in the gallery and the failed/cancelled list
let models = [];
let sending = false;

// --- talking to the API -----------------------------------------------------------------------

/** A same-site URL with query parameters, and the token: media elements and EventSource
 * cannot send an Authorization header. */
function link(path, params = {}) {
  const url = new URL(path, location.href);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  if (TOKEN) url.searchParams.set("token", TOKEN);
  return url.pathname + url.search;
}

/** The JSON answer of an API call, or an Error whose message is the API's one-line detail. */
async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  // a FormData body (an upload) sets its own multipart Content-Type
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  let response;
  try {
    const sent = form ? body : body && JSON.stringify(body);
    response = await fetch(path, { method, headers, body: sent });
  } catch (error) {
    throw new Error(`the server cannot be reached (${error.message})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    let detail = data?.detail ?? `${response.status} ${response.statusText}`;
    if (response.status === 401) detail += "; open this page as /#token=TOKEN";
    const error = new Error(detail);
    error.status = response.status;
    error.argument = data?.argument; // the request field at fault, if one is
    throw error;
  }
  return data;
}

function say(text, argument) {
  $("message").textContent = text.replace(/\s+/g, " ").trim(); // one line, however it came
  for (const field of form.elements) field.removeAttribute("aria-invalid");
  // an upload goes as its own part, not as a named field
  const upload = UPLOADS[argument];
  const field = upload ? $(upload) : argument && form.elements.namedItem(argument);
  if (field instanceof HTMLElement) {
    field.setAttribute("aria-invalid", "true");
    field.closest("details")?.setAttribute("open", "");
  }
}

/** Build an element: properties set as properties, children as nodes or plain text. */
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

// --- the form ---------------------------------------------------------------------------------

async function loadModels() {
  models = await api("/v1/models");
  const select = $("model");
  for (const model of models) {
    const label = model.downloaded ? model.name : `${model.name} (not downloaded)`;
    select.append(el("option", { value: model.name, textContent: label }));
  }
  select.value = (models.find((m) => m.downloaded) ?? models[0])?.name ?? "";
  showDefaults();
}

/** The chosen model's own values as placeholders: an empty field means exactly these. */
function showDefaults() {
  const model = chosenModel();
  if (!model) return;
  for (const key of DEFAULTS) $(key).placeholder = model[key];
  // control images, for the models that take them; the kinds a model has no ControlNet for
  // cannot be chosen
  const kinds = model.control?.kinds ?? {};
  $("control-row").hidden = model.control == null;
  for (const option of $("control").options) {
    const info = kinds[option.value];
    option.disabled = option.value !== "" && !info;
    const missing = option.value && info && !info.downloaded;
    option.textContent = missing ? `${option.value} (not downloaded)` : option.value || "none";
  }
  if ($("control").selectedOptions[0]?.disabled) $("control").value = "";
  const control = model.control ? $("control").value : "";
  $("control-inputs").hidden = !control;
  // the Stable Diffusion 1.5 checkpoint under the model, for the models that take one
  $("base-row").hidden = model.base == null;
  $("base").placeholder = model.base?.default ?? "";
  // an image or a video to start from, or to draw the control images from
  const kind = inputKind(model, control);
  if (String(kind) !== $("input-row").dataset.kind) $("input-file").value = ""; // no image as video
  $("input-row").dataset.kind = String(kind);
  $("input-row").hidden = kind === null;
  if (kind !== null) {
    $("input-label").textContent = model.tasks.includes("video-to-video")
      ? "Video to transform"
      : kind === "video"
        ? "Video to draw the control images from"
        : model.takes_text
          ? "Image (optional)"
          : "Image";
    $("input-file").accept = kind === "video" ? "video/*" : "image/png,image/jpeg,image/webp";
  }
  const source = model.tasks.includes("video-to-video") ? "video to transform" : "video below";
  $("control-help").textContent =
    "The control images as they are: pose skeletons, edge or depth maps, as a video. " +
    `Without one, they are drawn from the ${source}.`;
  const params = Object.entries(control ? controlParams(model, control) : model.params);
  const takes = control ? `${model.name} with ${control} control` : model.name;
  $("params-help").textContent = params.length
    ? `${takes} takes: ${params.map(([key, p]) => `${key} (${p.type}): ${p.help}`).join("; ")}`
    : `${takes} takes no extra parameters.`;
}

function chosenModel() {
  return models.find((m) => m.name === $("model").value);
}

/** The --param settings of a model run with control images: its ControlNet pipeline's, and
 * those of drawing the images from a video. */
function controlParams(model, kind) {
  const drawing = Object.entries(model.control.kinds[kind]?.drawing_params ?? {}).map(
    ([key, p]) => [key, { ...p, help: `${p.help}, when drawn from a video` }],
  );
  return { ...model.control.params, ...Object.fromEntries(drawing) };
}

/** The job fields of the form, by the API's names; empty fields are left out. */
function formFields() {
  const body = {};
  for (const field of form.elements) {
    if (field.closest("[hidden]")) continue; // what this model does not take is not sent
    if (field.type === "checkbox") body[field.name] = field.checked;
    if (!field.name || field.type === "checkbox" || field.value.trim() === "") continue;
    if (field.type === "number") body[field.name] = field.valueAsNumber;
    else if (field.name === "params") body.params = parseParams(field.value);
    else if (field.name === "lora") body.lora = field.value.split(",").map((l) => l.trim()).filter(Boolean);
    else body[field.name] = field.value;
  }
  return body;
}

function parseParams(text) {
  let params;
  try {
    params = JSON.parse(text);
  } catch {
    throw new Error('`params` is not valid JSON; write an object such as {"eta": 0.5}');
  }
  if (params === null || typeof params !== "object" || Array.isArray(params)) {
    throw new Error('`params` must be a JSON object such as {"eta": 0.5}');
  }
  return params;
}

/** "image", "video" or null: what the model can start from (with control images: the video
 * they may be drawn from). */
function inputKind(model, control) {
  if (model.tasks.includes("video-to-video") || control) return "video";
  return model.tasks.includes("image-to-video") ? "image" : null;
}

/** The file chosen in a file input that is shown, or null. */
function chosenFile(id) {
  const input = $(id);
  return input.closest("[hidden]") ? null : (input.files[0] ?? null);
}

/** An error to show, marking the field at fault as the API's refusals do. */
function refusal(message, argument) {
  return Object.assign(new Error(message), { argument });
}

/** JSON, or a multipart form when files go with the job (the API's two ways): each upload is
 * a part named by its request field. */
function jobBody(fields) {
  const model = models.find((m) => m.name === fields.model);
  const uploads = {};
  const kind = model && inputKind(model, fields.control);
  if (kind && chosenFile("input-file")) uploads[kind] = chosenFile("input-file");
  if (fields.control && chosenFile("control-file")) {
    uploads.control_video = chosenFile("control-file");
  }
  const needed =
    (kind === "video" && model.tasks.includes("video-to-video")) ||
    (kind === "image" && !model.takes_text);
  if (needed && !uploads[kind]) {
    throw refusal(`${model.name} starts from an ${kind}: choose one`, kind);
  }
  if (fields.control && !uploads.video && !uploads.control_video) {
    const why = `${fields.control} control needs its images`;
    throw refusal(`${why}: choose a control video, or a video to draw them from`, "control_video");
  }
  for (const [name, file] of Object.entries(uploads)) {
    if (file.size > MAX_UPLOAD_BYTES) {
      const limit = `${MAX_UPLOAD_BYTES / 2 ** 20} MiB`;
      const what = name.replace("_", " ");
      throw refusal(`the ${what} is larger than ${limit}; choose a smaller one`, name);
    }
  }
  if (!Object.keys(uploads).length) return fields;
  const body = new FormData();
  body.append("request", JSON.stringify(fields));
  for (const [name, file] of Object.entries(uploads)) body.append(name, file);
  return body;
}

async function submit(fields) {
  const job = await api("/v1/jobs", { method: "POST", body: jobBody(fields) });
  say("");
  follow(job);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (sending) return; // a held-down Enter key would queue the same job many times
  sending = true;
  try {
    await submit(formFields());
  } catch (error) {
    say(error.message, error.argument);
  } finally {
    sending = false;
  }
});
$("model").addEventListener("change", showDefaults);
$("control").addEventListener("change", showDefaults);

// --- the queue --------------------------------------------------------------------------------

function follow(job) {
  if (following.has(job.id)) return;
  const bar = el("progress", { max: 1 }); // no value yet: indeterminate
  bar.setAttribute("aria-label", `Progress of job ${job.id}`);
  const stage = el("p", { className: "stage", textContent: "Waiting in the queue" });
  const cancel = el("button", { type: "button", textContent: "Cancel" });
  const item = el(
    "li",
    { className: "card" },
    el("p", { className: "prompt", textContent: job.prompt || "(no prompt)" }),
    el("p", { className: "hint", textContent: `#${job.id} · ${job.model}` }),
    bar,
    stage,
    cancel,
  );
  const entry = { job, item, bar, stage, stream: null, clock: null };
  cancel.addEventListener("click", () => cancelJob(entry));
  following.set(job.id, entry);
  $("queue").append(item);
  showProgress(entry, { status: job.status, ...job.progress, eta: job.eta });
  updateEmpty();
  openStreams();
}

function openStreams() {
  [...following.values()].slice(0, MAX_STREAMS).forEach((entry) => entry.stream || listen(entry));
}

function listen(entry) {
  const stream = new EventSource(link(`/v1/jobs/${entry.job.id}/events`));
  entry.stream = stream;
  stream.addEventListener("progress", (event) => showProgress(entry, JSON.parse(event.data)));
  stream.addEventListener("done", (event) => finish(JSON.parse(event.data)));
  stream.addEventListener("error", async () => {
    // A dropped connection is retried by EventSource itself; CLOSED means an answer such as
    // 404 or 401, so ask for the job once, then try a new stream a little later.
    if (stream.readyState !== EventSource.CLOSED) return;
    entry.stream = null;
    try {
      const job = await api(`/v1/jobs/${entry.job.id}`);
      if (job.status === "succeeded" || job.status === "failed" || job.status === "cancelled") {
        return finish(job);
      }
    } catch (error) {
      if (error.status === 404) return finish({ id: entry.job.id, status: "deleted" });
      say(error.message);
    }
    setTimeout(openStreams, 5000);
  });
}

function showProgress(entry, { status, stage, step, total, eta }) {
  const { bar } = entry;
  if (total > 0) {
    bar.max = total;
    bar.value = step;
  } else if (stage !== "write") {
    bar.removeAttribute("value"); // loading or encoding: no steps to count
  }
  let text = status === "queued" ? "Waiting in the queue" : STAGES[stage] ?? stage ?? "Starting";
  if (stage === "denoise" && total > 0) text += `: step ${step} of ${total}`;
  const left = eta ?? estimate(entry, stage, step, total);
  if (stage === "denoise" && left != null) text += ` · about ${duration(left)} left`;
  if (entry.job.cancel_requested) text += " · stopping";
  entry.stage.textContent = text;
}

/** Seconds left in the denoising, from the pace of the steps seen so far on this page (the
 * progress events carry no ETA of their own). */
function estimate(entry, stage, step, total) {
  if (stage !== "denoise") return null;
  const now = performance.now();
  if (!entry.clock) entry.clock = { now, step };
  const done = step - entry.clock.step;
  return done > 0 ? ((now - entry.clock.now) / 1000 / done) * (total - step) : null;
}

function duration(seconds) {
  const s = Math.ceil(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

async function cancelJob(entry) {
  try {
    const job = await api(`/v1/jobs/${entry.job.id}/cancel`, { method: "POST" });
    if (job.status === "cancelled") {
      finish(job);
    } else {
      entry.job = job; // running: it stops at its next step and its stream says `done`
      entry.stage.textContent += " · stopping";
    }
  } catch (error) {
    say(error.message);
  }
}

/** A followed job has ended: out of the queue, into the gallery or the list of failures. */
function finish(job) {
  const entry = following.get(job.id);
  if (!entry) return; // already ended (a cancel answer and a `done` event can both arrive)
  entry.stream?.close(); // or EventSource would reconnect when the server ends the stream
  if (entry.item.contains(document.activeElement)) $("queue-heading").focus(); // not lost to <body>
  entry.item.remove();
  following.delete(job.id);
  if (job.status === "succeeded") addVideo(job, "prepend");
  else if (job.status === "failed" || job.status === "cancelled") addEnded(job, "prepend");
  updateEmpty();
  openStreams();
}

// --- the gallery ------------------------------------------------------------------------------

/** A job's video `url` (of `count`, numbered from 1) as the page shows it. */
function media(job, url, number, count) {
  const src = link(url);
  const which = count > 1 ? ` (${number} of ${count})` : "";
  const image = () => el("img", { src, alt: `Animation${which}: ${job.prompt ?? "no prompt"}` });
  if (job.output_format === "gif") return image();
  const video = el("video", { src, controls: true, loop: true, playsInline: true });
  video.muted = video.defaultMuted = true; // the state, and the `muted` attribute
  video.preload = "auto"; // small local files; the first frame then shows without a click
  video.setAttribute("aria-label", `Video${which}: ${job.prompt ?? "no prompt"}`);
  return video;
}

/** Every video of a job (`num_videos_per_prompt` of them), side by side. */
function videos(job) {
  const urls = job.video_urls ?? [];
  if (urls.length === 1) return media(job, urls[0], 1, 1);
  const all = urls.map((url, index) => media(job, url, index + 1, urls.length));
  return el("div", { className: "videos" }, ...all);
}

/** Each stage's time and measured peak memory, and the plan's estimate when there is one. */
function stages(record) {
  const timings = record?.timings ?? {};
  const measured = record?.memory?.measured ?? {};
  const planned = record?.memory?.planned ?? null;
  const names = [...new Set([...Object.keys(timings), ...Object.keys(measured)])];
  if (!names.length) return ""; // a job that did not run: nothing to show
  const heads = ["Stage", "Time", "Peak RAM", "Peak VRAM"];
  if (planned) heads.push("Planned RAM", "Planned VRAM");
  const row = (cells, tag) => el("tr", {}, ...cells.map((text) => el(tag, { textContent: text })));
  const table = el("table", { className: "stages" }, row(heads, "th"));
  for (const name of names) {
    const cells = [name, Number.isFinite(timings[name]) ? `${timings[name].toFixed(2)} s` : "-"];
    for (const peaks of planned ? [measured, planned] : [measured]) {
      cells.push(bytes(peaks[name]?.peak_ram_bytes), bytes(peaks[name]?.peak_vram_bytes));
    }
    table.append(row(cells, "td"));
  }
  return el("details", {}, el("summary", { textContent: "Time and memory" }), table);
}

/** Bytes as a person reads them (613 MiB, 7.9 GiB), as `promptreel inspect` shows them. */
function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return "-";
  for (const [unit, scale] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
    if (n >= scale) return `${(n / scale).toFixed(n < 10 * scale ? 1 : 0)} ${unit}`;
  }
  return `${n} B`;
}

function addVideo(job, where) {
  if (shown.has(job.id)) return;
  shown.add(job.id);
  const settings = job.record?.parameters ?? job.request;
  const facts = [`#${job.id}`, job.model, `seed ${job.seed}`];
  if (settings.width && settings.height) facts.push(`${settings.width}×${settings.height}`);
  if (settings.num_frames) facts.push(`${settings.num_frames} frames`);
  if (settings.num_videos_per_prompt > 1) facts.push(`${settings.num_videos_per_prompt} videos`);
  const peaks = Object.values(job.record?.memory?.measured ?? {});
  const peak = (key) => Math.max(...peaks.map((p) => p?.[key]).filter(Number.isFinite));
  if (peaks.length && Number.isFinite(peak("peak_ram_bytes"))) {
    facts.push(`peak RAM ${bytes(peak("peak_ram_bytes"))}`);
  }
  if (peaks.length && Number.isFinite(peak("peak_vram_bytes"))) {
    facts.push(`peak VRAM ${bytes(peak("peak_vram_bytes"))}`);
  }

  const actions = el("div", { className: "actions" });
  if (job.inputs.length && job.source !== "service") {
    // a CLI or Python run's input is a file of that machine: rerun it from there
    actions.append(el("span", { className: "hint", textContent: "made from a local file" }));
  } else {
    const rerun = el("button", { type: "button", textContent: "Rerun" });
    rerun.addEventListener("click", () => rerunJob(job).catch((error) => say(error.message)));
    actions.append(rerun);
  }
  // a CLI or Python run's file stays where its user put it: the service does not serve it
  if (job.video_url) {
    const download = el("a", {
      href: link(job.video_url, { download: "1" }),
      download: "",
      textContent: "Download",
    });
    download.setAttribute("aria-label", `Download video ${job.id}`);
    actions.append(download);
  }
  // the control images it was steered by (a job with `control`), to look at or use again
  if (job.control_url) {
    const control = el("a", {
      href: link(job.control_url),
      target: "_blank",
      rel: "noopener",
      textContent: "Control video",
    });
    control.setAttribute("aria-label", `Control video of job ${job.id}`);
    actions.append(control);
  }

  const item = el(
    "li",
    { className: "card" },
    job.video_url ? videos(job) : el("p", { className: "hint", textContent: job.note ?? "" }),
    el("p", { className: "prompt", textContent: job.prompt || "(no prompt)" }),
    el("p", { className: "hint", textContent: facts.join(" · ") }),
    actions,
    stages(job.record),
    el(
      "details",
      {},
      el("summary", { textContent: "Record" }),
      el("pre", { textContent: JSON.stringify(job.record, null, 2) }),
    ),
  );
  item.dataset.job = job.id;
  $("gallery")[where](item);
  updateEmpty();
}

/** Queue the job again: the server reruns it with its seed and settled values (`history
 * rerun`), so the same video comes out. */
async function rerunJob(job) {
  const again = await api(`/v1/jobs/${job.id}/rerun`, { method: "POST" });
  say("");
  follow(again);
}

function addEnded(job, where) {
  if (shown.has(job.id)) return;
  shown.add(job.id);
  const item = el(
    "li",
    {},
    el("strong", { textContent: `#${job.id} ${job.status}` }),
    " ",
    el("span", { className: "prompt", textContent: job.prompt || "(no prompt)" }),
    el("span", { className: "reason", textContent: job.reason ?? "" }),
  );
  $("ended")[where](item);
  updateEmpty();
}

async function loadOlder() {
  const page = await api(
    `/v1/jobs?status=succeeded&limit=${PAGE_SIZE}&offset=${$("gallery").children.length}`,
  );
  page.jobs.forEach((job) => addVideo(job, "append"));
  $("older").hidden = $("gallery").children.length >= page.total;
}

async function loadJobs() {
  // The queue before the gallery: a job that ends in between is then in both answers (and
  // shown once), rather than in neither.
  const [running, queued] = await Promise.all(
    ["running", "queued"].map((status) => api(`/v1/jobs?status=${status}&limit=100`)),
  );
  [...running.jobs, ...queued.jobs.reverse()].forEach(follow); // the oldest first
  await loadOlder();
  const [failed, cancelled] = await Promise.all(
    ["failed", "cancelled"].map((status) => api(`/v1/jobs?status=${status}&limit=10`)),
  );
  [...failed.jobs, ...cancelled.jobs]
    .sort((a, b) => b.id - a.id)
    .slice(0, 10)
    .forEach((job) => addEnded(job, "append"));
}

function updateEmpty() {
  $("queue-empty").hidden = following.size > 0;
  $("gallery-empty").hidden = $("gallery").children.length > 0;
  $("ended-heading").hidden = $("ended").children.length === 0;
}

$("older").addEventListener("click", () => loadOlder().catch((error) => say(error.message)));
Promise.all([loadModels(), loadJobs()]).catch((error) => say(error.message));
