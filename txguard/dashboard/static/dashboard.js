// txguard live dashboard. Plain JavaScript, no library. Every value from the server is
// inserted with textContent (never as HTML), so data cannot become markup or script.
"use strict";

const MAIN_CHARTS = ["daily_trend", "score_by_category", "anomalies_by_state", "amount_vs_score"];
const MAX_ROWS = 300;
const PIPELINE_EVERY_MS = 5000;
const CHARTS_EVERY_MS = 30000;

const alerts = new Map(); // trans_num -> {data, row}
let config = null;
let selected = null;

const $ = (selector) => document.querySelector(selector);

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (className) td.className = className;
  return td;
}

function money(x) { return x === null || x === undefined ? "–" : "$" + Number(x).toFixed(2); }
function score(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(3); }
function when(iso) { return iso ? String(iso).replace("T", " ").slice(0, 19) : "–"; }
function rate(x) { return x === null || x === undefined ? "–" : Number(x).toFixed(1); }

function badge(verdict, live) {
  const span = document.createElement("span");
  span.className = "badge " + (verdict || (live ? "live" : ""));
  span.textContent = verdict ? verdict.replace("_", " ") : (live ? "new" : "open");
  return span;
}

async function getJson(url, options) {
  const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options || {}));
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { detail: text }; }
  if (!response.ok) {
    const detail = body && body.detail;
    throw new Error(typeof detail === "string" ? detail : response.status + " " + response.statusText);
  }
  return body;
}

// --- alerts -------------------------------------------------------------------------------

function alertRow(a) {
  const tr = document.createElement("tr");
  tr.dataset.transNum = a.trans_num;
  const merchant = cell(a.merchant, "clip");
  merchant.title = a.merchant + " (" + a.category + ")"; // an attribute set from script: text, not markup
  tr.append(cell(when(a.event_time)), cell(a.card_masked), merchant, cell(money(a.amt), "num"),
            cell(score(a.score), "num"));
  const verdict = document.createElement("td");
  verdict.append(badge(a.verdict, a.live));
  tr.append(verdict);
  tr.addEventListener("click", () => select(a.trans_num));
  return tr;
}

function addAlert(a, live) {
  const known = alerts.get(a.trans_num);
  if (known) {
    if (live) return; // already listed (from PostgreSQL or an earlier push)
  }
  const row = alertRow(a);
  const body = $("#alerts tbody");
  if (known) {
    known.row.replaceWith(row);
  } else if (live) {
    body.prepend(row);
    row.classList.add("new");
  } else {
    body.append(row);
  }
  alerts.set(a.trans_num, { data: a, row: row });
  if (a.trans_num === selected) row.classList.add("selected");
  while (body.rows.length > MAX_ROWS) {
    const last = body.rows[body.rows.length - 1];
    alerts.delete(last.dataset.transNum);
    last.remove();
  }
  $("#alert-count").textContent = "(" + alerts.size + " shown)";
}

function setVerdictInList(transNum, verdict) {
  const known = alerts.get(transNum);
  if (!known) return;
  known.data.verdict = verdict;
  const cellNode = known.row.lastElementChild;
  cellNode.replaceChildren(badge(verdict, false));
}

async function loadAlerts() {
  const rows = await getJson("/api/alerts?limit=" + encodeURIComponent(config.alerts_limit));
  for (const a of rows) addAlert(a, false);
  if (!rows.length) $("#alert-count").textContent = "(none yet)";
}

function follow() {
  const source = new EventSource("/events");
  const status = $("#feed");
  source.addEventListener("open", () => { status.textContent = "live"; status.className = "pill status on"; });
  source.addEventListener("error", () => { status.textContent = "reconnecting…"; status.className = "pill status off"; });
  source.addEventListener("alert", (event) => addAlert(JSON.parse(event.data), true));
}

// --- drill-down ---------------------------------------------------------------------------

function scoreRows(d) {
  const rows = [
    ["ensemble score", score(d.score) + "  (threshold " + score(d.threshold) + ")", d.flagged],
    ["Isolation Forest", score(d.iforest_score)],
    ["online detector (river)", score(d.online_score)],
    ["supervised classifier", score(d.supervised_score)],
    ["learned online classifier", score(d.learned_score)],
    ["model version", d.model_version],
    ["label (chargeback)", d.is_fraud === null || d.is_fraud === undefined ? "not yet known" : (d.is_fraud ? "fraud" : "genuine")],
    ["place", [d.city, d.state].filter(Boolean).join(", ")],
  ];
  const body = $("#d-scores tbody");
  body.replaceChildren();
  for (const [name, value, over] of rows) {
    const tr = document.createElement("tr");
    tr.append(cell(name), cell(value, over ? "over" : ""));
    body.append(tr);
  }
}

function showVerdict(d) {
  $("#d-verdict").textContent = d.verdict
    ? d.verdict.replace("_", " ") + " by " + d.verdict_by + " at " + when(d.verdict_at)
    : "none yet";
}

async function select(transNum) {
  selected = transNum;
  for (const { row } of alerts.values()) row.classList.toggle("selected", row.dataset.transNum === transNum);
  $("#verdict-msg").textContent = "";
  let d;
  try {
    d = await getJson("/api/alerts/" + encodeURIComponent(transNum));
  } catch (e) {
    $("#detail-empty").textContent = "Could not load the alert: " + e.message;
    return;
  }
  if (selected !== transNum) return; // another click came first
  $("#detail-empty").hidden = true;
  $("#detail").hidden = false;
  $("#detail").dataset.transNum = transNum;
  $("#d-merchant").textContent = d.merchant;
  $("#d-category").textContent = d.category;
  $("#d-amt").textContent = money(d.amt);
  $("#d-time").textContent = when(d.event_time);
  $("#d-card").textContent = d.card_masked;
  $("#d-token").textContent = d.card;
  $("#d-reason").textContent = d.reason || "(not flagged)";
  scoreRows(d);
  showVerdict(d);
  const body = $("#history tbody");
  body.replaceChildren();
  for (const h of d.history) {
    const tr = document.createElement("tr");
    if (h.trans_num === transNum) tr.className = "selected";
    tr.append(cell(when(h.event_time)), cell(h.merchant, "clip"), cell(h.category), cell(money(h.amt), "num"),
              cell(score(h.score), "num"),
              cell(h.verdict ? h.verdict.replace("_", " ") : (h.is_fraud ? "fraud" : (h.flagged ? "alert" : ""))));
    body.append(tr);
  }
}

async function decide(verdict) {
  const transNum = $("#detail").dataset.transNum;
  if (!transNum) return;
  const buttons = [$("#confirm"), $("#false-positive")];
  buttons.forEach((b) => { b.disabled = true; });
  const message = $("#verdict-msg");
  message.className = "muted";
  message.textContent = "sending…";
  const body = { trans_num: transNum, verdict: verdict };
  if (config.analyst_editable) {
    const analyst = $("#analyst").value.trim();
    if (analyst) body.analyst = analyst;
  }
  try {
    const result = await getJson("/api/verdicts", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    showVerdict(result);
    setVerdictInList(transNum, result.verdict);
    message.textContent = "stored; label published to " + result.label.topic;
  } catch (e) {
    message.className = "error";
    message.textContent = "not recorded: " + e.message;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// --- pipeline -----------------------------------------------------------------------------

async function refreshPipeline() {
  try {
    const p = await getJson("/api/throughput");
    const services = $("#services tbody");
    services.replaceChildren();
    for (const s of p.services) {
      const tr = document.createElement("tr");
      tr.append(cell(s.service), cell(s.group), cell(s.lag.toLocaleString(), "num"), cell(rate(s.events_per_s), "num"));
      services.append(tr);
    }
    const topics = $("#topics tbody");
    topics.replaceChildren();
    for (const t of p.topics) {
      const tr = document.createElement("tr");
      tr.append(cell(t.topic), cell(t.end.toLocaleString(), "num"), cell(rate(t.events_per_s), "num"));
      topics.append(tr);
    }
    $("#pipeline-at").textContent = "at " + when(p.at) + " UTC";
  } catch (e) {
    $("#pipeline-at").textContent = "(unavailable: " + e.message + ")";
  }
}

// --- charts -------------------------------------------------------------------------------

function chartNames() {
  const names = Object.keys(config.charts);
  const main = MAIN_CHARTS.filter((n) => names.includes(n));
  return main.length ? main : names;
}

function buildCharts() {
  const box = $("#charts");
  box.replaceChildren();
  for (const name of chartNames()) {
    const figure = document.createElement("figure");
    figure.dataset.chart = name;
    const caption = document.createElement("figcaption");
    caption.textContent = config.charts[name] + " ";
    const count = document.createElement("span");
    count.className = "muted rows";
    caption.append(count);
    const img = document.createElement("img");
    img.alt = config.charts[name];
    figure.append(caption, img);
    box.append(figure);
  }
  if (!box.children.length) box.textContent = "No charts available.";
}

async function refreshCharts() {
  for (const figure of document.querySelectorAll("#charts figure")) {
    const name = figure.dataset.chart;
    figure.querySelector("img").src = "/charts/" + encodeURIComponent(name) + ".png?t=" + Date.now();
    try {
      const rows = await getJson("/api/charts/" + encodeURIComponent(name));
      figure.querySelector(".rows").textContent = "(" + rows.length.toLocaleString() + " rows)";
    } catch (e) {
      figure.querySelector(".rows").textContent = "(" + e.message + ")";
    }
  }
}

// --- start --------------------------------------------------------------------------------

async function start() {
  config = await getJson("/api/config");
  $("#namespace").textContent = "namespace " + config.namespace;
  const analyst = $("#analyst");
  analyst.value = (config.analyst_editable && localStorage.getItem("txguard.analyst")) || config.analyst;
  analyst.readOnly = !config.analyst_editable;
  analyst.addEventListener("change", () => localStorage.setItem("txguard.analyst", analyst.value.trim()));
  $("#confirm").addEventListener("click", () => decide("confirmed_fraud"));
  $("#false-positive").addEventListener("click", () => decide("false_positive"));
  follow(); // before the PostgreSQL load: an alert published meanwhile is not missed
  buildCharts();
  refreshCharts();
  setInterval(refreshCharts, CHARTS_EVERY_MS);
  refreshPipeline();
  setInterval(refreshPipeline, PIPELINE_EVERY_MS);
  await loadAlerts();
}

document.addEventListener("DOMContentLoaded", () => {
  start().catch((e) => {
    const feed = $("#feed");
    feed.textContent = "error: " + e.message;
    feed.className = "pill status off";
  });
});
