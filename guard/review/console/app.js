// guard review console: plain JS, no build step. Held texts are attacker-controlled, so every value is
// inserted with textContent, never innerHTML. The bearer token lives in sessionStorage (this tab only).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem("guardToken") || "", items: [], selected: null, detail: null, skew: 0, busy: false,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), authorization: `Bearer ${state.token}` },
  });
  if (response.status === 401) { signOut("The token was refused."); throw new Error("unauthorized"); }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return { status: response.status, body };
}

function timeLeft(item) {
  const now = Date.now() / 1000 + state.skew;
  return Math.max(0, item.deadline - now);
}

function fmt(seconds) {
  seconds = Math.floor(seconds);
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  if (seconds >= 60) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  return `${seconds}s`;
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  $("count").textContent = `(${state.items.length})`;
  $("empty").hidden = state.items.length > 0;
  for (const item of state.items) {
    const left = timeLeft(item);
    const li = el("li", { "data-id": item.id, class: item.id === state.selected ? "selected" : "" },
      el("span", { class: `left${left < 10 ? " urgent" : ""}` }, fmt(left)),
      el("strong", {}, item.categories.join(", ") || "review"), " ",
      el("span", {}, `${item.direction} · ${item.route} · ${item.tier}`));
    li.addEventListener("click", () => select(item.id));
    list.append(li);
  }
}

async function refresh() {
  const { status, body } = await api("/v1/reviews?status=pending&limit=500");
  if (status !== 200) { say(`Queue unavailable (${status}).`, true); return; }
  state.skew = body.now - Date.now() / 1000;
  state.items = body.items; // oldest first, as the API returns them
  renderQueue();
  if (state.selected && !state.items.some((i) => i.id === state.selected) && state.detail
      && state.detail.status === "pending") {
    await select(state.selected); // decided elsewhere: show its final state
  }
}

function renderDetail(detail) {
  $("item-empty").hidden = true;
  $("item").hidden = false;
  $("editor").hidden = true;
  $("item-title").textContent = `${detail.status} · ${detail.direction} on ${detail.route}`;
  const meta = $("item-meta");
  meta.replaceChildren();
  const rows = [
    ["review id", detail.id], ["request id", detail.request_id], ["tier", detail.tier],
    ["policy", detail.policy_version], ["on timeout", detail.on_timeout],
    ["time left", detail.status === "pending" ? fmt(timeLeft(detail)) : "—"],
  ];
  if (detail.decision) rows.push(["decided by", `${detail.decision.reviewer || "(timeout)"} ${detail.decision.note || ""}`]);
  for (const [k, v] of rows) meta.append(el("dt", {}, k), el("dd", {}, v));

  const texts = $("texts");
  texts.replaceChildren();
  for (const text of detail.texts) {
    const box = el("div", { class: "text", "data-index": text.index });
    for (const seg of text.segments) {
      if (seg.findings.length === 0) { box.append(document.createTextNode(seg.text)); continue; }
      const why = seg.findings.map((i) => detail.findings_detail[i].explanation).join("\n");
      box.append(el("mark", { class: seg.masked ? "masked" : "", title: why, "data-findings": seg.findings.join(" ") }, seg.text));
    }
    texts.append(box);
  }

  const tbody = $("findings").querySelector("tbody");
  tbody.replaceChildren();
  detail.findings_detail.forEach((f, i) => {
    const over = f.threshold !== null && f.score >= f.threshold;
    const row = el("tr", { "data-finding": i },
      el("td", {}, i + 1),
      el("td", {}, f.label ? `${f.category} / ${f.label}` : f.category),
      el("td", {}, `${f.detector} ${f.detector_version}`),
      el("td", { class: over ? "over" : "" }, f.score.toFixed(2)),
      el("td", {}, f.threshold === null ? "—" : f.threshold.toFixed(2)),
      el("td", {}, f.band ? `${f.band} → ${f.action}` : "below table"),
      el("td", {}, el("div", {}, f.explanation), el("div", { class: "reason" }, f.reason)));
    row.addEventListener("mouseenter", () => highlight(i, true));
    row.addEventListener("mouseleave", () => highlight(i, false));
    tbody.append(row);
  });
  const pending = detail.status === "pending";
  for (const id of ["approve", "deny", "edit"]) $(id).disabled = !pending;
}

function highlight(index, on) {
  for (const mark of document.querySelectorAll("mark[data-findings]")) {
    if (mark.dataset.findings.split(" ").includes(String(index))) mark.classList.toggle("active", on);
  }
}

async function select(id) {
  state.selected = id;
  renderQueue();
  const { status, body } = await api(`/v1/reviews/${encodeURIComponent(id)}`);
  if (status !== 200) { say(`Item unavailable (${status}).`, true); return; }
  state.detail = body;
  renderDetail(body);
}

function move(step) {
  if (!state.items.length) return;
  let index = state.items.findIndex((i) => i.id === state.selected);
  index = index < 0 ? 0 : Math.min(state.items.length - 1, Math.max(0, index + step));
  select(state.items[index].id);
}

async function decide(outcome, text) {
  if (state.busy || !state.detail || state.detail.status !== "pending") return;
  state.busy = true; // keys pressed while a decision is in flight would act on a stale view
  try {
    const payload = { outcome, note: $("note").value };
    if (outcome === "edit") payload.text = text;
    const decidedId = state.detail.id;
    const position = state.items.findIndex((i) => i.id === decidedId);
    const { status, body } = await api(`/v1/reviews/${encodeURIComponent(decidedId)}/decision`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload),
    });
    if (status === 200) say(`${outcome}: done.`);
    else if (status === 409) say("Already decided by someone else.", true);
    else say(`Not decided: ${(body && body.error && body.error.message) || status}`, true);
    $("note").value = "";
    await refresh();
    // Next item in the queue (the one that took the decided item's place), else the decided one's result.
    const next = state.items[Math.min(Math.max(position, 0), state.items.length - 1)];
    await select(next ? next.id : decidedId);
  } finally {
    state.busy = false;
  }
}

function openEditor() {
  if (!state.detail || state.detail.status !== "pending") return;
  const first = state.detail.texts[0];
  $("edit-text").value = first ? first.segments.map((s) => s.text).join("") : "";
  $("editor").hidden = false;
  $("edit-text").focus();
}

function signOut(message) {
  sessionStorage.removeItem("guardToken");
  state.token = "";
  $("main").hidden = true; $("logout").hidden = true; $("login").hidden = false;
  say(message || "");
}

function start() {
  $("login").hidden = true; $("main").hidden = false; $("logout").hidden = false;
  refresh();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("guardToken", state.token);
  $("token").value = "";
  start();
});
$("logout").addEventListener("click", () => signOut("Signed out."));
$("approve").addEventListener("click", () => decide("approve"));
$("deny").addEventListener("click", () => decide("deny"));
$("edit").addEventListener("click", openEditor);
$("edit-cancel").addEventListener("click", () => { $("editor").hidden = true; });
$("editor").addEventListener("submit", (event) => { event.preventDefault(); decide("edit", $("edit-text").value); });
$("edit-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); decide("edit", $("edit-text").value); }
  if (event.key === "Escape") { $("editor").hidden = true; }
});

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (typing || state.busy || event.ctrlKey || event.metaKey || event.altKey || $("main").hidden) return;
  const keys = { j: () => move(1), k: () => move(-1), a: () => decide("approve"), d: () => decide("deny"),
                 e: openEditor, r: refresh };
  const action = keys[event.key];
  if (action) { event.preventDefault(); action(); }
});

setInterval(() => { if (state.token) renderQueue(); }, 1000);          // countdowns
setInterval(() => { if (state.token && !$("main").hidden) refresh(); }, 3000); // new items, others' decisions

if (state.token) start(); else $("login").hidden = false;
