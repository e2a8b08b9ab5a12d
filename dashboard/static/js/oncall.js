// The on-call physician's view: alerts told or escalated to the physician on call, across
// every ward, most severe first; phone-sized. Kept current from /ws.

import { $, api, el, initPage } from "./common.js";
import { alertCard, wireAckButtons } from "./alertcard.js";
import { connectLive } from "./live.js";

const RECEIVER = "physician_on_call";
let timer = null;

async function load() {
  const box = $("#oncall-list");
  let alerts;
  try {
    alerts = await api(`/api/alerts?state=active&receiver=${RECEIVER}`);
  } catch (e) {
    box.replaceChildren(el("p", { class: "form-error" }, e.message));
    return;
  }
  alerts.sort((a, b) => (b.tier || 0) - (a.tier || 0) ||
    (a.state === "active" ? 0 : 1) - (b.state === "active" ? 0 : 1) ||
    (a.raised_ts || 0) - (b.raised_ts || 0));
  $("#oncall-count").textContent = `${alerts.length} alert${alerts.length === 1 ? "" : "s"}`;
  box.replaceChildren(...(alerts.length ? alerts.map((a) => alertCard(a))
    : [el("p", { class: "muted empty" }, "No alerts for the physician on call.")]));
}

function soon() {
  clearTimeout(timer);
  timer = setTimeout(load, 200);
}

initPage();
wireAckButtons($("#oncall-list"), soon);
setInterval(load, 30000); // "raised n min ago" stays true
connectLive({ onSnapshot: soon, onEvent: (ev) => { if (ev.type === "alert") soon(); } });
