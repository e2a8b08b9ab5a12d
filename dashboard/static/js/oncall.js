// The on-call physician's view: alerts told or escalated to the physician on call, across
// every ward, most severe first; phone-sized. Kept current from /ws; each alert keeps its
// card (patched in place), so a tap is never lost to a redraw.

import { $, api, coalesce, el, initPage, pressWatch, syncList } from "./common.js";
import { alertCard, onAlertChanged, wireAckButtons } from "./alertcard.js";
import { connectLive } from "./live.js";

const RECEIVER = "physician_on_call";
const cards = new Map(); // alert id -> card
let alerts = [];
let timer = null;
let pressed = () => false; // a pointer is down on the list: keep the order until it is up

function order(list) {
  return list.sort((a, b) => (b.tier || 0) - (a.tier || 0) ||
    (a.state === "active" ? 0 : 1) - (b.state === "active" ? 0 : 1) ||
    (a.raised_ts || 0) - (b.raised_ts || 0));
}

function render() {
  $("#oncall-count").textContent = `${alerts.length} alert${alerts.length === 1 ? "" : "s"}`;
  syncList($("#oncall-list"), alerts.map((a) => ({ key: a.id, node: alertCard(a) })), cards, {
    hold: () => pressed(),
    empty: el("p", { class: "muted empty" }, "No alerts for the physician on call."),
  });
}

const schedule = coalesce(render);

async function load() {
  try {
    alerts = order(await api(`/api/alerts?state=active&receiver=${RECEIVER}`));
  } catch (e) {
    $("#oncall-count").textContent = "";
    $("#oncall-list").replaceChildren(el("p", { class: "form-error" }, e.message));
    cards.clear();
    return;
  }
  schedule();
}

function soon() {
  clearTimeout(timer);
  timer = setTimeout(load, 200);
}

// An alert changed: shown at once where we have it; the list is fetched again for the rest.
function update(alert) {
  const i = alerts.findIndex((a) => a.id === alert.id);
  if (i >= 0) {
    if (alert.state === "resolved") alerts.splice(i, 1);
    else alerts[i] = { ...alerts[i], ...alert };
    schedule();
  }
}

initPage();
const list = $("#oncall-list");
pressed = pressWatch(list, schedule);
onAlertChanged(update);
wireAckButtons(list, schedule);
setInterval(schedule, 5000); // "raised n min ago" stays true
setInterval(load, 60000);
connectLive({
  onSnapshot: soon,
  onEvent: (ev) => {
    if (ev.type !== "alert" || !ev.alert) return;
    update(ev.alert);
    soon();
  },
});
