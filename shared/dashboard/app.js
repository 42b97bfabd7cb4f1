// switchyard dashboard: plain JS over the documented JSON API. The token is kept in
// sessionStorage (this tab only) and sent as a bearer header. All text goes through
// textContent: nothing from the API is ever parsed as HTML.
"use strict";

const TOKEN_KEY = "switchyard.token";
const REFRESH_MS = 5000;
let me = null;          // {name, scopes}
let timer = null;       // live refresh of the current view
let generation = 0;     // bumped by each navigation: late answers of a left view are dropped
const newer = [];       // cursors of the pages before the current one (Deliveries, Jobs)

// ---- small helpers -------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function can(scope) { return !!me && me.scopes.includes(scope); }

function when(text) {
  if (!text) return "";
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleString();
}

function duration(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} m`;
  return `${seconds} s`;
}

function flash(message, kind) {
  const f = document.getElementById("flash");
  f.textContent = message;
  f.className = kind === "info" ? "info" : "";
  f.hidden = !message;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// ---- the API -------------------------------------------------------------------------

class ApiFailure extends Error {}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) { showLogin(); throw new ApiFailure("no token"); }
  const init = { method, headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiFailure(`The API did not answer (${e.message}).`);
  }
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("The token was refused (wrong or expired). Enter a valid token.");
    throw new ApiFailure("unauthorized");
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const words = {
      403: "This token may not do that",
      404: "Not found",
      409: "Refused",
      503: "The store is unavailable; try again",
    }[resp.status] || `The API answered ${resp.status}`;
    throw new ApiFailure(`${words}: ${data.message || data.code || ""}`.trim());
  }
  return data;
}

// ---- token prompt ----------------------------------------------------------------------

function showLogin(message) {
  stopRefresh();
  me = null;
  document.getElementById("login").hidden = false;
  document.getElementById("view").replaceChildren();
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  flash(message || "");
  document.getElementById("token").focus();
}

async function start() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return showLogin();
  try {
    me = await api("GET", "/whoami");
  } catch (e) {
    if (!(e instanceof ApiFailure) || e.message !== "unauthorized") flash(e.message);
    return;
  }
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  document.getElementById("who").textContent = `${me.name} (${me.scopes.join(", ")})`;
  flash("");
  route();
}

document.getElementById("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  start();
});

document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});

// ---- routing -------------------------------------------------------------------------

function stopRefresh() { if (timer) { clearInterval(timer); timer = null; } }

function route() {
  if (!me) return;
  generation += 1;
  stopRefresh();
  flash("");
  const hash = location.hash.replace(/^#\/?/, "") || "deliveries";
  const [path, qs] = hash.split("?");
  const params = Object.fromEntries(new URLSearchParams(qs || ""));
  const [view, ...rest] = path.split("/");
  const id = rest.length ? decodeURIComponent(rest.join("/")) : null;
  for (const a of document.querySelectorAll("#nav a")) {
    const current = a.dataset.view === view || (view === "events" && a.dataset.view === "deliveries");
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const render = {
    deliveries: () => deliveries(params),
    events: () => delivery(id),
    jobs: () => (id ? job(id) : jobs(params)),
    modules: () => modules(),
  }[view] || (() => deliveries(params));
  render().catch((e) => flash(e.message));
}

window.addEventListener("hashchange", () => { newer.length = 0; route(); });

function setView(gen, ...nodes) {
  if (gen !== generation) return;
  document.getElementById("view").replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

// ---- Deliveries ----------------------------------------------------------------------

function outcome(e) {
  if (e.status === "failed") return el("span", { class: "badge bad", text: "failed" });
  if (e.status === "in_progress") return el("span", { class: "badge warn", text: "in progress" });
  const n = (e.jobs || []).filter((j) => j.dispatched).length;
  if (n > 0) return el("span", { class: "badge ok", text: `dispatched ${n}` });
  if ((e.skipped || []).length) return el("span", { class: "badge warn", text: "skipped" });
  return el("span", { class: "badge", text: "no module listens" });
}

async function deliveries(params, cursor) {
  const gen = generation;
  const form = el("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    location.hash = `#/deliveries${query({ source: f.get("source"), type: f.get("type"), status: f.get("status") })}`;
  } },
    el("div", {}, el("label", { for: "f-source", text: "Source" }), el("input", { id: "f-source", name: "source", value: params.source || "" })),
    el("div", {}, el("label", { for: "f-type", text: "Event type" }), el("input", { id: "f-type", name: "type", value: params.type || "" })),
    el("div", {}, el("label", { for: "f-status", text: "Outcome" }),
      el("select", { id: "f-status", name: "status" },
        ["", "completed", "failed", "in_progress"].map((s) => el("option", { value: s, selected: params.status === s, text: s ? s.replace("_", " ") : "any" })))),
    el("button", { type: "submit", text: "Filter" }));
  const load = async () => {
    const page = await api("GET", `/events${query({ source: params.source, type: params.type, status: params.status, limit: "25", cursor })}`);
    const rows = page.items.map((e) => {
      const id = `${e.source}:${e.event_id}`;
      return el("tr", { class: "row", "data-testid": "delivery", onclick: () => { location.hash = `#/events/${encodeURIComponent(id)}`; } },
        el("td", { text: when(e.received_at) }),
        el("td", { text: e.source }),
        el("td", {}, el("a", { href: `#/events/${encodeURIComponent(id)}`, text: e.event_type + (e.action ? ` ${e.action}` : "") })),
        el("td", { text: e.entity }),
        el("td", {}, outcome(e)));
    });
    const table = el("table", {}, el("thead", {}, el("tr", {}, ["Received", "Source", "Event", "Entity", "Outcome"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "5", class: "muted", text: "No deliveries match." }))));
    const pager = el("div", { class: "pager" },
      el("button", { type: "button", disabled: !newer.length, text: "← Newer", onclick: () => deliveries(params, newer.pop()).catch((e) => flash(e.message)) }),
      el("button", { type: "button", disabled: !page.next_cursor, text: "Older →", onclick: () => { newer.push(cursor); deliveries(params, page.next_cursor).catch((e) => flash(e.message)); } }));
    setView(gen, el("h1", { text: "Deliveries" }), form, table, pager,
      el("p", { class: "muted", text: cursor ? "Paged view: not refreshing." : `Refreshes every ${REFRESH_MS / 1000} s.` }));
  };
  stopRefresh();
  await load();
  if (!cursor) timer = setInterval(() => load().catch((e) => flash(e.message)), REFRESH_MS);
}

// ---- Delivery detail -----------------------------------------------------------------

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : String(v))]));
}

async function delivery(id) {
  const gen = generation;
  const e = await api("GET", `/events/${encodeURIComponent(id)}?include=payload`);
  const ev = e.event || {};
  const ref = ev.git_ref ? `${ev.git_ref.kind} ${ev.git_ref.name}` : null;
  const result = el("div", { "data-testid": "replay-result" });
  const modulesCard = el("div", {},
    (e.jobs || []).map((j) => el("div", { class: "card", "data-testid": "matched" },
      el("strong", { text: j.module }), " matched: ",
      j.dispatched ? "dispatched as " : "recorded, not started: ",
      el("a", { href: `#/jobs/${encodeURIComponent(j.job_id)}`, text: `job ${j.job_id}` }))),
    (e.skipped || []).map((s) => el("div", { class: "card", "data-testid": "skipped" },
      el("strong", { text: s.module }), " skipped: ", el("code", { text: s.reason }),
      s.detail ? el("span", { class: "muted", text: ` — ${s.detail}` }) : null)));
  const replay = async (dry) => {
    if (!dry && !confirm(`Replay ${id} against the current modules? Failed and newly matching modules run.`)) return;
    try {
      const r = await api("POST", `/events/${encodeURIComponent(id)}/replay${dry ? "?dry_run=true" : ""}`);
      if (dry) {
        result.replaceChildren(el("h2", { text: "Replay plan (dry run: nothing dispatched)" }),
          facts([["would dispatch", (r.dispatch || []).map((j) => j.module).join(", ") || "nothing"],
            ["kept as they are", (r.kept || []).map((j) => j.module).join(", ") || "nothing"],
            ["skipped", (r.skipped || []).map((s) => `${s.module} (${s.reason})`).join(", ") || "nothing"]]));
      } else {
        result.replaceChildren(el("h2", { text: "Replayed" }), facts([["dispatched", (r.jobs || []).map((j) => j.module).join(", ") || "nothing"]]));
        flash("Replay sent.", "info");
      }
    } catch (err) { flash(err.message); }
  };
  setView(gen,
    el("p", {}, el("a", { href: "#/deliveries", text: "← Deliveries" })),
    el("h1", { text: `${e.event_type}${e.action ? ` ${e.action}` : ""} from ${e.source}` }),
    facts([["delivery id", e.event_id], ["received", when(e.received_at)], ["outcome", outcome(e)],
      ["entity", e.entity], ["repository", ev.repository], ["sender", ev.sender ? `${ev.sender.login}${ev.sender.bot ? " (bot)" : ""}` : null],
      ["ref", ref], ["source kind", ev.kind], ["attempts", e.attempts], ["body digest", e.body_digest]]),
    el("h2", { text: "Modules" }), modulesCard,
    el("div", { class: "actions" },
      el("button", { type: "button", "data-testid": "dry-run", onclick: () => replay(true), text: "Replay (dry run)" }),
      can("invoke") ? el("button", { type: "button", class: "primary", "data-testid": "replay", onclick: () => replay(false), text: "Replay" }) : null),
    result,
    el("h2", { text: "Payload" }),
    e.event ? el("details", { "data-testid": "payload" }, el("summary", { text: "Show the payload" }), el("pre", { text: JSON.stringify(ev.payload, null, 2) }))
      : el("p", { class: "muted", text: "The payload was not kept (skipped schedule ticks) or has expired." }));
}

// ---- Jobs ----------------------------------------------------------------------------

function statusBadge(s) {
  const cls = { succeeded: "ok", failed: "bad", cancelled: "warn", running: "warn" }[s] || "";
  return el("span", { class: `badge ${cls}`, "data-testid": "job-status", text: s });
}

async function jobs(params, cursor) {
  const gen = generation;
  const form = el("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    location.hash = `#/jobs${query({ module: f.get("module"), status: f.get("status") })}`;
  } },
    el("div", {}, el("label", { for: "j-module", text: "Module" }), el("input", { id: "j-module", name: "module", value: params.module || "" })),
    el("div", {}, el("label", { for: "j-status", text: "Status" }),
      el("select", { id: "j-status", name: "status" },
        ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) => el("option", { value: s, selected: params.status === s, text: s || "any" })))),
    el("button", { type: "submit", text: "Filter" }));
  const page = await api("GET", `/jobs${query({ module: params.module, status: params.status, limit: "25", cursor })}`);
  const rows = page.items.map((j) => el("tr", { class: "row", "data-testid": "job", onclick: () => { location.hash = `#/jobs/${encodeURIComponent(j.job_id)}`; } },
    el("td", { text: when(j.created_at) }), el("td", { text: j.module }), el("td", {}, statusBadge(j.status)),
    el("td", { text: j.entity }), el("td", { text: j.attempts }),
    el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(j.job_id)}`, text: j.job_id.slice(0, 12) }))));
  setView(gen, el("h1", { text: "Jobs" }), form,
    el("table", {}, el("thead", {}, el("tr", {}, ["Created", "Module", "Status", "Entity", "Attempts", "Job"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No jobs match." })))),
    el("div", { class: "pager" },
      el("button", { type: "button", disabled: !newer.length, text: "← Newer", onclick: () => jobs(params, newer.pop()).catch((e) => flash(e.message)) }),
      el("button", { type: "button", disabled: !page.next_cursor, text: "Older →", onclick: () => { newer.push(cursor); jobs(params, page.next_cursor).catch((e) => flash(e.message)); } })));
}

async function job(id) {
  const gen = generation;
  const j = await api("GET", `/jobs/${encodeURIComponent(id)}`);
  const active = j.status === "queued" || j.status === "running";
  const cancel = async () => {
    if (!confirm(`Cancel job ${id}?`)) return;
    try {
      const r = await api("POST", `/jobs/${encodeURIComponent(id)}/cancel`);
      await job(id);
      flash(r.status === "cancelled" ? "Job cancelled." : "Cancel requested; the job stops at its next check.", "info");
    } catch (e) { flash(e.message); }
  };
  setView(gen,
    el("p", {}, el("a", { href: "#/jobs", text: "← Jobs" })),
    el("h1", { text: `Job ${j.job_id}` }),
    facts([["module", j.module], ["status", statusBadge(j.status)], ["function", j.function], ["trigger", j.trigger],
      ["event", el("a", { href: `#/events/${encodeURIComponent(`${j.event_source}:${j.event_id}`)}`, text: `${j.event_source}:${j.event_id}` })],
      ["entity", j.entity], ["attempts", j.max_attempts ? `${j.attempts} of ${j.max_attempts}` : j.attempts],
      ["created", when(j.created_at)], ["started", when(j.started_at)], ["finished", when(j.finished_at)],
      ["lease holder", j.lease_holder], ["lease expires", when(j.lease_expires_at)],
      ["cancel requested", j.cancel_requested ? "yes" : null], ["error", j.error]]),
    active && can("invoke") ? el("div", { class: "actions" }, el("button", { type: "button", class: "danger", "data-testid": "cancel", onclick: cancel, text: "Cancel" })) : null,
    el("h2", { text: "Output" }),
    j.output !== undefined ? el("pre", { text: JSON.stringify(j.output, null, 2) }) : el("p", { class: "muted", text: "None." }),
    el("h2", { text: "Journal" }),
    (j.journal || []).length ? el("pre", { text: j.journal.join("\n") }) : el("p", { class: "muted", text: "No lines." }));
}

// ---- Modules -------------------------------------------------------------------------

function triggerWords(t) {
  if (t.kind === "schedule") return `on schedule "${t.cron}"${t.timezone ? ` (${t.timezone})` : " (UTC)"}`;
  if (t.kind === "invoke") return "on demand (API invoke)";
  let s = `on ${(t.events || []).join(", ")}`;
  if (t.actions) s += ` ${t.actions.join(", ")}`;
  if (t.sources) s += ` from ${t.sources.join(", ")}`;
  if (t.branches) s += `${t.branches.ignore ? " except on " : " on "}${t.branches.patterns.join(", ")}`;
  if (t.paths) s += `${t.paths.ignore ? ", ignoring " : ", touching "}${t.paths.patterns.join(", ")}`;
  if (t.cooldown_seconds) s += `, cooldown ${duration(t.cooldown_seconds)} per entity`;
  return s;
}

async function modules() {
  const gen = generation;
  const reg = await api("GET", "/modules");
  const invokeBox = el("div", { "data-testid": "invoke-box" });
  const openInvoke = (name) => {
    const area = el("textarea", { id: "invoke-payload", "aria-label": "Payload (JSON)", text: "{}" });
    const out = el("p", { "data-testid": "invoke-result" });
    const send = async () => {
      let payload;
      try { payload = JSON.parse(area.value || "{}"); } catch (e) { flash(`The payload is not JSON: ${e.message}`); return; }
      try {
        const r = await api("POST", `/modules/${encodeURIComponent(name)}/invoke`, { payload });
        out.replaceChildren("Started: ", el("a", { href: `#/jobs/${encodeURIComponent(r.job_id)}`, "data-testid": "invoked-job", text: `job ${r.job_id}` }));
      } catch (e) { flash(e.message); }
    };
    invokeBox.replaceChildren(el("div", { class: "card" }, el("h2", { text: `Invoke ${name}` }),
      el("label", { for: "invoke-payload", text: "Payload (JSON)" }), area,
      el("div", { class: "actions" }, el("button", { type: "button", class: "primary", "data-testid": "invoke-send", onclick: send, text: "Invoke" })), out));
  };
  const rows = reg.modules.map((m) => el("tr", { "data-testid": "module" },
    el("td", {}, el("strong", { text: m.name }), el("div", { class: "muted", text: m.description })),
    el("td", {}, el("ul", {}, m.triggers.map((t) => el("li", { text: triggerWords(t) })))),
    el("td", { text: m.function || "pulled by workers" }),
    el("td", { text: m.feature_flag }),
    el("td", {}, m.triggers.some((t) => t.kind === "invoke") && can("invoke")
      ? el("button", { type: "button", "data-testid": `invoke-${m.name}`, onclick: () => openInvoke(m.name), text: "Invoke…" }) : null)));
  const nodes = [el("h1", { text: "Modules" }),
    el("p", {}, reg.published ? `Registry version ${reg.version} (published).` : "Compiled-in modules (nothing published yet)."),
    el("table", {}, el("thead", {}, el("tr", {}, ["Module", "Triggers", "Function", "Flag", ""].map((h) => el("th", { scope: "col", text: h })))), el("tbody", {}, rows)),
    invokeBox];
  if (can("admin")) {
    const settingsOut = el("pre", { "data-testid": "settings", text: "" });
    nodes.push(el("h2", { text: "Per-scope settings" }),
      el("form", { class: "filters", onsubmit: async (ev) => {
        ev.preventDefault();
        const scope = new FormData(ev.target).get("scope");
        try { settingsOut.textContent = JSON.stringify(await api("GET", `/admin/settings/${scope}`), null, 2); } catch (e) { flash(e.message); }
      } }, el("div", {}, el("label", { for: "scope", text: "Scope (global, org/NAME, repo/OWNER/NAME)" }), el("input", { id: "scope", name: "scope", value: "global" })),
      el("button", { type: "submit", text: "Show" })), settingsOut);
    const versions = await api("GET", "/admin/registry/versions");
    const rollback = async (v) => {
      if (!confirm(`Publish version ${v}'s modules again as a new version?`)) return;
      try { await api("POST", `/admin/registry/rollback/${v}`); flash(`Rolled back to version ${v}.`, "info"); await modules(); } catch (e) { flash(e.message); }
    };
    nodes.push(el("h2", { text: "Registry versions" }),
      versions.versions.length ? el("table", { "data-testid": "versions" }, el("thead", {}, el("tr", {}, ["Version", "Published", "By", "Modules", ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, versions.versions.map((v) => el("tr", {}, el("td", { text: v.version }), el("td", { text: when(v.published_at) }), el("td", { text: v.published_by }),
          el("td", { text: v.modules.join(", ") }),
          el("td", {}, v.version === versions.active ? el("span", { class: "muted", text: "active" }) : el("button", { type: "button", "data-testid": `rollback-${v.version}`, onclick: () => rollback(v.version), text: "Roll back" }))))))
        : el("p", { class: "muted", text: "Nothing published yet." }));
  }
  setView(gen, ...nodes);
}

start();
