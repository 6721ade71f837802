// The shardgrad dashboard: polls /api/v1 and renders jobs, one job, or the workers, with the
// event log below.
// Plain DOM and SVG, no libraries, so the page works without network access. Text from the
// server (job names, errors) is only ever set as text, never parsed as HTML.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

// ------------------------------------------------------------------ helpers
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function s(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

function label(parent, attrs, text) {
  const el = s("text", attrs);
  el.textContent = text;
  parent.append(el);
  return el;
}

function fmt(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (typeof x !== "number") return String(x);
  if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3)) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}

function fmtInt(x) {
  return x === null || x === undefined ? "–" : Math.round(x).toLocaleString("en-US");
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function ago(t) {
  if (!t) return "–";
  const d = Math.max(0, Date.now() / 1000 - t);
  if (d < 60) return `${d.toFixed(d < 10 ? 1 : 0)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");
}

function badge(state) {
  return h("span", { class: `badge state-${String(state).toLowerCase()}` }, state);
}

function progressBar(p, label) {
  const fill = h("div", { class: "fill" });
  fill.style.width = `${Math.max(0, Math.min(1, p || 0)) * 100}%`;
  return h("div", { class: "progress", title: label }, fill, h("span", { class: "label" }, label));
}

class AuthError extends Error {}

async function api(path) {
  const res = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (res.status === 401) throw new AuthError("not logged in");
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

function setStatus(text, error = false) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.classList.toggle("error", error);
}

// ------------------------------------------------------------------ charts
// series: [{name, x: [...], y: [...]}]; draws axes, ticks and one polyline per series.
function lineChart(id, title, series, opts = {}) {
  const W = 640, H = opts.height || 220, L = 56, R = 12, T = 26, B = 28;
  const svg = s("svg", { id, class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
  label(svg, { x: L, y: 16, class: "chart-title" }, title);
  const pts = series.flatMap((sr) => sr.x.map((x, i) => [x, sr.y[i]]))
    .filter(([x, y]) => y !== null && y !== undefined && Number.isFinite(y));
  const main = series.length ? series[0] : { x: [] };
  svg.dataset.points = String(main.y ? main.y.filter((v) => v !== null).length : 0);
  svg.dataset.lastStep = String(main.x.length ? main.x[main.x.length - 1] : 0);
  if (!pts.length) {
    label(svg, { x: W / 2, y: H / 2, class: "chart-empty", "text-anchor": "middle" }, "no data yet");
    return svg;
  }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (opts.yMin !== undefined) y0 = Math.min(y0, opts.yMin);
  if (opts.yMax !== undefined) y1 = Math.max(y1, opts.yMax);
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += Math.abs(y1) * 0.05 + 1e-9; y0 -= Math.abs(y0) * 0.05 + 1e-9; }
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4, yy = sy(yv);
    svg.append(s("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
    label(svg, { x: L - 6, y: yy + 4, "text-anchor": "end", class: "tick" }, fmt(yv, 3));
  }
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4;
    label(svg, { x: sx(xv), y: H - 8, "text-anchor": "middle", class: "tick" }, fmtInt(xv));
  }
  series.forEach((sr, k) => {
    const color = sr.color || COLORS[k % COLORS.length];
    const coords = [];
    sr.x.forEach((x, i) => {
      const y = sr.y[i];
      if (y !== null && y !== undefined && Number.isFinite(y)) coords.push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
    });
    const line = s("polyline", { points: coords.join(" "), fill: "none", stroke: color, "stroke-width": 1.6, class: "series" });
    line.dataset.series = sr.name;
    svg.append(line);
    if (coords.length === 1) {
      const [cx, cy] = coords[0].split(",");
      svg.append(s("circle", { cx, cy, r: 2.5, fill: color }));
    }
  });
  if (series.length > 1 || opts.legend) {
    series.forEach((sr, k) => {
      const y = 16, x = W - R - 150 * (series.length - k);
      svg.append(s("rect", { x, y: y - 8, width: 10, height: 3, fill: sr.color || COLORS[k % COLORS.length] }));
      label(svg, { x: x + 14, y, class: "legend" }, sr.name.slice(0, 20));
    });
  }
  return svg;
}

function sparkline(xs, ys) {
  const W = 120, H = 28;
  const svg = s("svg", { class: "spark", viewBox: `0 0 ${W} ${H}` });
  const pts = xs.map((x, i) => [x, ys[i]]).filter(([, y]) => y !== null && Number.isFinite(y));
  svg.dataset.points = String(pts.length);
  if (pts.length < 2) return svg;
  const x0 = pts[0][0], x1 = pts[pts.length - 1][0] || x0 + 1;
  const ysF = pts.map((p) => p[1]);
  const y0 = Math.min(...ysF), y1 = Math.max(...ysF) === y0 ? y0 + 1 : Math.max(...ysF);
  const coords = pts.map(([x, y]) => `${(((x - x0) / (x1 - x0 || 1)) * (W - 2) + 1).toFixed(1)},${((1 - (y - y0) / (y1 - y0)) * (H - 4) + 2).toFixed(1)}`);
  svg.append(s("polyline", { points: coords.join(" "), fill: "none", stroke: COLORS[0], "stroke-width": 1.4 }));
  return svg;
}

// Incrementally fetched per-job series, shared by the views.
const seriesCache = new Map();

async function jobSeries(job) {
  let c = seriesCache.get(job.id);
  if (!c || job.step < c.lastTrain) {
    c = {
      lastTrain: -1, lastEval: -1, fetched: false, state: null,
      train: { step: [], loss: [], samples_per_second: [], step_seconds: [], lr: [], time: [] },
      eval: { step: [], loss: [], accuracy: [] },
    };
    seriesCache.set(job.id, c);
  }
  if (c.fetched && c.lastTrain >= job.step && c.state === job.state) return c;
  const id = encodeURIComponent(job.id);
  const m = await api(`/api/v1/jobs/${id}/metrics?after_step=${c.lastTrain}&after_eval=${c.lastEval}&max_points=2000`);
  for (const key of Object.keys(c.train)) c.train[key].push(...(m.train[key] || []));
  for (const key of Object.keys(c.eval)) c.eval[key].push(...(m.eval[key] || []));
  if (c.train.step.length) c.lastTrain = c.train.step[c.train.step.length - 1];
  if (c.eval.step.length) c.lastEval = c.eval.step[c.eval.step.length - 1];
  c.fetched = true;
  c.state = m.state;
  thin(c);
  return c;
}

function thin(c) {
  const limit = 4000;
  if (c.train.step.length <= limit) return;
  for (const key of Object.keys(c.train)) c.train[key] = c.train[key].filter((_, i) => i % 2 === 0 || i === c.train.step.length - 1);
}

// ------------------------------------------------------------------ overview
async function renderOverview() {
  const o = await api("/api/v1/overview");
  const el = document.getElementById("overview");
  const live = Object.entries(o.workers).filter(([k]) => k !== "LOST").reduce((a, [, v]) => a + v, 0);
  el.replaceChildren(
    h("span", { class: "pill" }, `${o.jobs.RUNNING} running`),
    h("span", { class: "pill" }, `${o.jobs.PENDING} pending`),
    h("span", { class: "pill" }, `${live} workers`),
    h("span", { class: "pill", id: "throughput" }, `${fmtInt(o.samples_per_second)} samples/s`),
  );
}

// ------------------------------------------------------------------ jobs list
async function renderJobs(main) {
  const { jobs } = await api("/api/v1/jobs");
  for (const j of jobs) eventLog.names.set(j.id, j.name);
  const rows = jobs.map((j) => h("tr", { "data-job-id": j.id, "data-state": j.state, class: "job-row" },
    h("td", {}, h("a", { href: `/jobs/${encodeURIComponent(j.id)}` }, j.name || j.id), j.name ? h("div", { class: "muted small" }, j.id) : null),
    h("td", {}, badge(j.state), j.reason && j.state !== "RUNNING" ? h("div", { class: "muted small reason" }, j.reason) : null),
    h("td", {}, progressBar(j.progress, `${fmtInt(j.step)} / ${fmtInt(j.total_steps)}`)),
    h("td", { class: "num", "data-field": "loss" }, fmt(j.loss)),
    h("td", { class: "num" }, j.eval && j.eval.accuracy !== null ? `${(j.eval.accuracy * 100).toFixed(1)}%` : "–"),
    h("td", { class: "num" }, fmtInt(j.samples_per_second)),
    h("td", {}, sparkline(j.curve.step, j.curve.loss)),
    h("td", { class: "muted" }, ago(j.created_at)),
  ));
  const table = jobs.length
    ? h("table", { id: "jobs-table" },
        h("thead", {}, h("tr", {}, ["Job", "State", "Progress", "Loss", "Accuracy", "Samples/s", "Loss curve", "Created"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows))
    : h("p", { class: "muted", id: "no-jobs" }, "No jobs yet. Submit one with `shardgrad submit` or Client.submit().");

  // Live curves: the active jobs (or the newest one when none is active), full resolution.
  let shown = jobs.filter((j) => j.state === "RUNNING" || j.state === "PENDING").slice(0, 6);
  if (!shown.length && jobs.length) shown = [jobs[0]];
  const all = await Promise.all(shown.map((j) => jobSeries(j)));
  const lossSeries = shown.map((j, k) => ({ name: j.name || j.id, x: all[k].train.step, y: all[k].train.loss }));
  const accSeries = shown.map((j, k) => ({ name: j.name || j.id, x: all[k].eval.step, y: all[k].eval.accuracy }));
  const charts = h("div", { class: "charts" },
    h("div", { class: "card" }, lineChart("chart-loss", "Training loss", lossSeries, { legend: shown.length > 1 })),
    h("div", { class: "card" }, lineChart("chart-accuracy", "Eval accuracy", accSeries, { yMin: 0, yMax: 1 })),
  );
  main.replaceChildren(h("h2", {}, "Jobs"), h("div", { class: "card" }, table), h("h2", {}, "Live curves"), charts);
}

// ------------------------------------------------------------------ one job
async function renderJob(main, jobId) {
  let job;
  try {
    job = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}`);
  } catch (e) {
    if (e instanceof AuthError) throw e;
    main.replaceChildren(h("h2", {}, "Job not found"), h("p", { class: "error" }, e.message), h("a", { href: "/" }, "All jobs"));
    return;
  }
  eventLog.names.set(job.id, job.name);
  const c = await jobSeries(job);
  const stat = (label, value, field) => h("div", { class: "stat" }, h("div", { class: "muted small" }, label), h("div", { class: "value", "data-field": field }, value));
  const stats = h("div", { class: "stats" },
    stat("State", badge(job.state), "state"),
    stat("Step", `${fmtInt(job.step)} / ${fmtInt(job.total_steps)}`, "step"),
    stat("Loss", fmt(job.loss), "loss"),
    stat("Samples/s", fmtInt(job.samples_per_second), "samples_per_second"),
    stat("Step time", job.step_seconds === null ? "–" : `${(job.step_seconds * 1000).toFixed(1)} ms`, "step_seconds"),
    stat("Eval loss", job.eval ? fmt(job.eval.loss) : "–", "eval_loss"),
    stat("Eval accuracy", job.eval && job.eval.accuracy !== null ? `${(job.eval.accuracy * 100).toFixed(2)}%` : "–", "accuracy"),
    stat("Created", ago(job.created_at), "created"),
    stat("Started", ago(job.started_at), "started"),
    stat("Finished", ago(job.finished_at), "finished"),
  );
  const t = c.train;
  const recent = [];
  for (let i = t.step.length - 1; i >= 0 && recent.length < 15; i--) {
    recent.push(h("tr", {}, h("td", { class: "num" }, fmtInt(t.step[i])), h("td", { class: "num" }, fmt(t.loss[i])),
      h("td", { class: "num" }, fmt(t.lr[i])), h("td", { class: "num" }, fmtInt(t.samples_per_second[i])),
      h("td", { class: "num" }, t.step_seconds[i] === null ? "–" : (t.step_seconds[i] * 1000).toFixed(1))));
  }
  const ckpts = job.checkpoints.length
    ? h("table", { id: "checkpoints" }, h("thead", {}, h("tr", {}, ["Step", "Size", "Written", "File"].map((x) => h("th", {}, x)))),
        h("tbody", {}, job.checkpoints.map((k) => h("tr", {}, h("td", { class: "num" }, fmtInt(k.step)), h("td", { class: "num" }, fmtBytes(k.bytes)), h("td", {}, ago(k.time)), h("td", { class: "muted" }, k.file)))))
    : h("p", { class: "muted" }, "No checkpoints yet.");
  main.replaceChildren(
    h("p", {}, h("a", { href: "/" }, "← All jobs")),
    h("h2", { id: "job-title" }, job.name || job.id, " ", badge(job.state)),
    h("p", { class: "muted" }, job.id, job.reason ? ` · ${job.reason}` : ""),
    progressBar(job.progress, `${fmtInt(job.step)} / ${fmtInt(job.total_steps)} steps`),
    stats,
    h("div", { class: "charts" },
      h("div", { class: "card" }, lineChart("chart-loss", "Loss", [
        { name: "train", x: t.step, y: t.loss },
        { name: "eval", x: c.eval.step, y: c.eval.loss },
      ], { legend: true })),
      h("div", { class: "card" }, lineChart("chart-accuracy", "Eval accuracy", [{ name: "accuracy", x: c.eval.step, y: c.eval.accuracy }], { yMin: 0, yMax: 1 })),
      h("div", { class: "card" }, lineChart("chart-throughput", "Samples per second", [{ name: "samples/s", x: t.step, y: t.samples_per_second }], { yMin: 0 })),
    ),
    eventsSection(job.id).root, // this job's events, moved (not rebuilt) on every refresh
    h("h3", {}, "Recent steps"),
    h("div", { class: "card" }, h("table", { id: "recent-steps" }, h("thead", {}, h("tr", {}, ["Step", "Loss", "LR", "Samples/s", "Step ms"].map((x) => h("th", {}, x)))), h("tbody", {}, recent))),
    h("h3", {}, "Checkpoints"),
    h("div", { class: "card" }, ckpts),
    h("h3", {}, "Configuration"),
    h("pre", { class: "card config", id: "config" }, JSON.stringify(job.config, null, 2)),
  );
}

// ------------------------------------------------------------------ workers
async function renderWorkers(main) {
  const { workers } = await api("/api/v1/workers");
  const rows = workers.map((w) => h("tr", { "data-worker-id": w.id, "data-state": w.state, class: w.straggler ? "straggler" : "" },
    h("td", {}, w.id),
    h("td", {}, w.pool),
    h("td", {}, badge(w.state)),
    h("td", {}, w.device || "–"),
    h("td", { class: "muted" }, w.address || w.hostname || "–"),
    h("td", {}, ago(w.last_heartbeat)),
    h("td", { class: "num" }, w.step_time_s === null ? "–" : `${(w.step_time_s * 1000).toFixed(1)} ms`),
    h("td", { class: "num" }, `${fmt(w.compute_seconds_total, 3)} s`),
    h("td", {}, w.straggler ? h("span", { class: "badge straggler-flag" }, "straggler") : ""),
  ));
  const table = workers.length
    ? h("table", { id: "workers-table" },
        h("thead", {}, h("tr", {}, ["Worker", "Pool", "State", "Device", "Address", "Last heartbeat", "Step time", "Compute", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows))
    : h("p", { class: "muted" }, "No workers have joined.");
  main.replaceChildren(h("h2", {}, "Workers"), h("div", { class: "card" }, table));
}

// ------------------------------------------------------------------ events
// The event log, newest first, below the jobs or workers (on a job's page, that job's events
// below its curves). The section is built once and never rebuilt, so the job filter keeps its
// state; each poll fetches only the newer events.
const EVENT_ROWS = 200;
const eventLog = { filter: "", lastId: 0, names: new Map(), optionsKey: null, el: null };

function eventsSection(fixedJob) {
  if (eventLog.el) return eventLog.el;
  const select = h("select", { id: "events-job" }, h("option", { value: "" }, "All jobs"));
  select.addEventListener("change", () => {
    setEventFilter(select.value);
    renderEvents().catch((e) => setStatus(`update failed: ${e.message}`, true));
  });
  const tbody = h("tbody", {});
  const table = h("table", { id: "events-table" },
    h("thead", {}, h("tr", {}, ["Time", "Level", "Kind", "Job", "Worker", "Message"].map((t) => h("th", {}, t)))),
    tbody);
  const empty = h("p", { class: "muted", id: "no-events" }, "No events yet.");
  const filter = h("label", { class: "muted small" }, "Job", select);
  filter.hidden = Boolean(fixedJob); // a job's own page shows that job's events only
  const root = document.getElementById("events");
  root.replaceChildren(h("div", { class: "events-head" }, h("h2", {}, "Events"), filter), h("div", { class: "card" }, table, empty));
  eventLog.el = { root, select, tbody, empty };
  if (fixedJob) setEventFilter(fixedJob);
  return eventLog.el;
}

function setEventFilter(jobId) {
  eventLog.filter = jobId || "";
  eventLog.lastId = 0;
  eventLog.el.tbody.replaceChildren();
}

function eventTime(t) {
  const d = new Date(t * 1000);
  const old = Date.now() / 1000 - t > 20 * 3600;
  return old ? d.toISOString().slice(0, 16).replace("T", " ") : d.toLocaleTimeString();
}

function eventRow(e) {
  const job = e.job_id ? h("a", { href: `/jobs/${encodeURIComponent(e.job_id)}`, "data-job": e.job_id }, eventLog.names.get(e.job_id) || e.job_id) : "–";
  return h("tr", { class: `event level-${e.level}`, "data-event-id": e.id, "data-kind": e.kind, "data-level": e.level, "data-job-id": e.job_id },
    h("td", { class: "muted nowrap", title: new Date(e.time * 1000).toISOString() }, eventTime(e.time)),
    h("td", {}, h("span", { class: `badge level-${e.level}` }, e.level)),
    h("td", {}, e.kind),
    h("td", {}, job),
    h("td", { class: "nowrap" }, e.worker_id || "–"),
    h("td", { class: "message" }, e.message),
  );
}

// The filter's choices: every job the page knows of; rebuilt only when that set changes.
function updateJobOptions() {
  const { select } = eventLog.el;
  const ids = [...eventLog.names.keys()].sort();
  if (eventLog.filter && !eventLog.names.has(eventLog.filter)) ids.push(eventLog.filter);
  const key = ids.map((id) => `${id}=${eventLog.names.get(id) || ""}`).join("\n");
  if (key === eventLog.optionsKey) return;
  eventLog.optionsKey = key;
  select.replaceChildren(h("option", { value: "" }, "All jobs"),
    ...ids.map((id) => h("option", { value: id }, eventLog.names.get(id) ? `${eventLog.names.get(id)} (${id})` : id)));
  select.value = eventLog.filter;
}

async function renderEvents(fixedJob) {
  const el = eventsSection(fixedJob);
  const filter = eventLog.filter;
  const q = new URLSearchParams({ since_id: String(eventLog.lastId), limit: String(EVENT_ROWS) });
  if (filter) q.set("job_id", filter);
  const out = await api(`/api/v1/events?${q}`);
  if (filter !== eventLog.filter) return; // the filter changed while this was on its way
  const fresh = out.events.filter((e) => e.id > eventLog.lastId); // newest first
  if (fresh.length) {
    el.tbody.prepend(...fresh.map(eventRow));
    while (el.tbody.rows.length > EVENT_ROWS) el.tbody.lastElementChild.remove();
    eventLog.lastId = fresh[0].id;
  }
  for (const e of fresh) if (e.job_id && !eventLog.names.has(e.job_id)) eventLog.names.set(e.job_id, "");
  for (const a of el.tbody.querySelectorAll("a[data-job]")) { // names learnt after the row was made
    const name = eventLog.names.get(a.dataset.job);
    if (name && a.textContent !== name) a.textContent = name;
  }
  updateJobOptions();
  el.empty.hidden = el.tbody.rows.length > 0;
  el.root.dataset.lastId = String(eventLog.lastId);
  el.root.dataset.filter = filter;
}

// ------------------------------------------------------------------ main loop
function route() {
  const path = location.pathname;
  if (path === "/workers") return { name: "workers", render: renderWorkers };
  const m = path.match(/^\/jobs\/([^/]+)$/);
  if (m) {
    const jobId = decodeURIComponent(m[1]);
    return { name: "jobs", jobId, render: (main) => renderJob(main, jobId) };
  }
  return { name: "jobs", render: renderJobs };
}

async function tick(r) {
  const main = document.getElementById("main");
  try {
    await Promise.all([renderOverview(), r.render(main), renderEvents(r.jobId)]);
    document.body.dataset.updated = String(Date.now());
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e instanceof AuthError) {
      location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
      return;
    }
    setStatus(`update failed: ${e.message}`, true);
  }
  setTimeout(() => tick(r), POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const r = route();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === r.name);
  tick(r);
});
