// One alert, at its stable link /alerts/{id} (what pagers and webhooks carry): details,
// its events, and acknowledge / snooze / resolve.

import { $, api, el, initPage, user } from "./common.js";
import { act, alertCard } from "./alertcard.js";
import { dateTime, receiversText } from "./format.js";
import { connectLive } from "./live.js";

const alertId = $("#main").dataset.alertId;

function actions(a) {
  if (!user.can("ack") || a.state === "resolved") return null;
  const snooze = (minutes) => el("button", { type: "button", class: "btn btn-quiet",
    dataset: { snooze: String(minutes * 60) } }, `Snooze ${minutes} min`);
  return el("div", { class: "panel" },
    el("h2", {}, "Actions"),
    el("div", { class: "alert-actions" }, snooze(15), snooze(30), snooze(60)),
    el("form", { id: "resolve-form", class: "form" },
      el("label", { for: "resolve-note" }, "Resolve with a note"),
      el("textarea", { id: "resolve-note", rows: "2", maxlength: "2000", required: true }),
      el("button", { type: "submit", class: "btn" }, "Resolve")));
}

async function load() {
  const box = $("#alert-detail");
  let a;
  try {
    a = await api(`/api/alerts/${encodeURIComponent(alertId)}`);
  } catch (e) {
    box.replaceChildren(el("p", { class: "form-error" }, e.message));
    return;
  }
  const events = (a.events || []).map((e) => el("tr", {},
    el("td", { class: "when" }, dateTime(e.ts)), el("td", {}, e.event),
    el("td", {}, receiversText(typeof e.receivers === "string" ? safeList(e.receivers) : e.receivers)),
    el("td", { class: "small" }, e.reason || "")));
  box.replaceChildren(
    alertCard(a, { link: false, reason: true }),
    actions(a),
    el("section", { class: "panel" }, el("h2", {}, "History"),
      events.length ? el("table", { class: "table" },
        el("thead", {}, el("tr", {}, ["Time", "Event", "Told", "Why"].map((h) => el("th", {}, h)))),
        el("tbody", {}, events)) : el("p", { class: "muted" }, "No events stored yet.")));
}

function safeList(text) {
  try { const v = JSON.parse(text); return Array.isArray(v) ? v : [String(v)]; } catch { return [text]; }
}

initPage();
const box = $("#alert-detail");
box.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  if (b.dataset.ack) { b.disabled = true; await act(b.dataset.ack, "ack"); load(); }
  if (b.dataset.snooze) { b.disabled = true; await act(alertId, "snooze", { seconds: Number(b.dataset.snooze) }); load(); }
});
box.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const note = $("#resolve-note").value.trim();
  if (!note) { $("#resolve-note").focus(); return; }
  await act(alertId, "resolve", { note });
  load();
});
load();
connectLive({ onSnapshot: () => {}, onEvent: (ev) => { if (ev.alert && ev.alert.id === alertId) load(); } });
