// One alert, at its stable link /alerts/{id} (what pagers and webhooks carry): details,
// its events, and acknowledge / snooze / resolve. Redrawn in place (patched), so a press
// and its release land on the same button and a half-typed note stays.

import { $, api, coalesce, el, initPage, keepFocus, notify, patch, pressWatch, user } from "./common.js";
import { act, alertCard, onAlertChanged } from "./alertcard.js";
import { dateTime, receiversText, zoneName } from "./format.js";
import { connectLive } from "./live.js";

const alertId = $("#main").dataset.alertId;
const MAX_SNOOZE_S = Number(document.body.dataset.maxSnooze) || 1800;
let current = null;
let failure = null;

// The snoozes this server grants: 15, 30, 60 ... minutes up to its longest, and the
// longest itself when it is none of those.
export function snoozeChoices(maxSeconds) {
  const minutes = [15, 30, 60, 120, 240].filter((m) => m * 60 <= maxSeconds);
  const longest = Math.floor(maxSeconds / 60);
  if (longest > 0 && !minutes.includes(longest)) minutes.push(longest);
  return minutes;
}

function actions(a) {
  if (!user.can("ack") || a.state === "resolved") return null;
  const snooze = (minutes) => el("button", { type: "button", class: "btn btn-quiet",
    dataset: { snooze: String(minutes * 60), key: `snooze-${minutes}` },
    "aria-disabled": a.state === "acknowledged" ? "true" : null },
  `Snooze ${minutes} min`);
  return el("section", { class: "panel", dataset: { key: "actions" } },
    el("h2", {}, "Actions"),
    el("div", { class: "alert-actions" }, ...snoozeChoices(MAX_SNOOZE_S).map(snooze)),
    a.state === "acknowledged" ? el("p", { class: "muted small" },
      "Acknowledged: muted until it resolves or worsens (a snooze is for an alert not yet acknowledged).") : null,
    el("form", { id: "resolve-form", class: "form" },
      el("label", { for: "resolve-note" }, "Resolve with a note"),
      el("textarea", { id: "resolve-note", rows: "2", maxlength: "2000", required: true }),
      el("button", { type: "submit", class: "btn" }, "Resolve")));
}

function safeList(text) {
  if (Array.isArray(text)) return text;
  if (text === null || text === undefined) return [];
  try {
    const v = JSON.parse(text);
    if (v === null) return [];
    return Array.isArray(v) ? v : [String(v)];
  } catch {
    return [text];
  }
}

// A pointer is down on the page: nothing is redrawn until it is up. A redraw changes the
// card's text and so its height (a live event arrives every few seconds on a sick bed), and
// the buttons below it moved under the finger: press and release fell on different
// elements and the press was lost (no request sent).
let pressed = () => false;

function render() {
  if (pressed()) return; // drawn on release
  const box = $("#alert-detail");
  const focused = document.activeElement;
  const holder = focused && focused.closest ? focused.closest("[data-key][tabindex]") : null;
  if (failure) {
    box.replaceChildren(el("p", { class: "form-error" }, failure));
    return;
  }
  if (!current) return;
  const a = current;
  const events = (a.events || []).map((e) => el("tr", {},
    el("td", { class: "when" }, dateTime(e.ts)), el("td", {}, e.event),
    el("td", {}, receiversText(safeList(e.receivers)) || "–"),
    el("td", { class: "small" }, e.reason || "")));
  const next = [
    alertCard(a, { link: false, reason: true }),
    actions(a),
    el("section", { class: "panel", dataset: { key: "history" } }, el("h2", {}, "History"),
      events.length ? el("table", { class: "table" },
        el("caption", { class: "muted small" }, `Times in ${zoneName()}`),
        el("thead", {}, el("tr", {}, ["Time", "Event", "Told", "Why"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, events)) : el("p", { class: "muted" }, "No events stored yet.")),
  ].filter(Boolean);
  const old = [...box.children];
  if (old.length === next.length && old.every((n, i) => n.dataset.key === next[i].dataset.key)) {
    old.forEach((n, i) => patch(n, next[i]));
  } else {
    box.replaceChildren(...next);
  }
  keepFocus(focused, holder);
}

const schedule = coalesce(render);

// Loads overlap (every live event of this alert starts one): only the latest started may
// set the page, or an answer from before a snooze, arriving after it, would show the alert
// as not snoozed until its next event.
let loadSeq = 0;
async function load() {
  const mine = ++loadSeq;
  let got;
  let error = null;
  try {
    got = await api(`/api/alerts/${encodeURIComponent(alertId)}`);
  } catch (e) {
    error = e.message;
  }
  if (mine !== loadSeq) return;
  if (error === null) current = got;
  failure = error;
  schedule();
}

initPage();
const box = $("#alert-detail");
pressed = pressWatch(box, schedule);
box.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button[data-ack], button[data-snooze]");
  if (!b || b.getAttribute("aria-disabled") === "true") return;
  b.setAttribute("aria-disabled", "true"); // not disabled: that would drop focus to <body>
  if (b.dataset.ack) {
    b.textContent = "Acknowledging…";
    await act(b.dataset.ack, "ack");
    load();
  }
  if (b.dataset.snooze) {
    await act(alertId, "snooze", { seconds: Number(b.dataset.snooze) });
    load();
  }
});
box.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const note = $("#resolve-note").value.trim();
  if (!note) {
    notify("Write why the alert is resolved.", "error");
    $("#resolve-note").focus();
    return;
  }
  const done = await act(alertId, "resolve", { note });
  // the live update may already have taken the form away (the alert is resolved)
  const field = $("#resolve-note");
  if (done && field) field.value = "";
  load();
});
onAlertChanged((a) => {
  if (a.id === alertId && current) {
    current = { ...current, ...a, events: current.events };
    schedule();
  }
});
setInterval(schedule, 5000); // "raised n min ago" stays true
await load();
connectLive({ onSnapshot: () => load(), onEvent: (ev) => { if (ev.alert && ev.alert.id === alertId) load(); } });
