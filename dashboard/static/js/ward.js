// The ward overview: one tile per admitted bed, worst first, kept live from /ws.

import { nowMs } from "./clock.js";
import { $, coalesce, el, initPage } from "./common.js";
import { alertCard, wireAckButtons } from "./alertcard.js";
import { compareBeds } from "./format.js";
import { showForecastQuality } from "./forecast.js";
import { connectLive } from "./live.js";
import { bedTile } from "./tile.js";

const beds = new Map(); // "ward/bed" -> state
const alerts = new Map(); // id -> alert
const tiles = new Map(); // "ward/bed" -> {sig, node}
const params = new URLSearchParams(location.search);
let wardFilter = params.get("ward") || "";

const key = (ward, bed) => `${ward}/${bed}`;

function alertsOf(ward, bed) {
  return [...alerts.values()].filter((a) => a.ward === ward && a.bed === bed)
    .sort((a, b) => (b.tier || 0) - (a.tier || 0) || (a.raised_ts || 0) - (b.raised_ts || 0));
}

function renderWardSelect() {
  const select = $("#ward-select");
  const wards = [...new Set([...beds.values()].map((b) => b.ward))].sort();
  if (wardFilter && !wards.includes(wardFilter)) wards.push(wardFilter);
  const current = [...select.options].slice(1).map((o) => o.value).join("\n");
  if (current !== wards.join("\n")) {
    select.replaceChildren(el("option", { value: "" }, "All wards"),
      ...wards.map((w) => el("option", { value: w }, w)));
  }
  select.value = wardFilter;
}

function render() {
  renderWardSelect();
  const list = [...beds.values()]
    .filter((b) => !wardFilter || b.ward === wardFilter)
    .map((b) => ({ ...b, alerts: alertsOf(b.ward, b.bed) }))
    .sort(compareBeds);
  const box = $("#tiles");
  const minute = Math.floor(nowMs() / 15000); // ages refresh every 15 s
  const seen = new Set();
  const nodes = list.map((b) => {
    const k = key(b.ward, b.bed);
    seen.add(k);
    const sig = JSON.stringify(b) + minute;
    let entry = tiles.get(k);
    if (!entry || entry.sig !== sig) {
      entry = { sig, node: bedTile(b) };
      tiles.set(k, entry);
    }
    return entry.node;
  });
  for (const k of [...tiles.keys()]) if (!seen.has(k)) tiles.delete(k);
  if (!nodes.length) {
    box.replaceChildren(el("p", { class: "muted empty" }, "No admitted beds" +
      (wardFilter ? ` on ward ${wardFilter}` : "") + "."));
  } else {
    box.replaceChildren(...nodes);
  }
  $("#bed-count").textContent = `${list.length} bed${list.length === 1 ? "" : "s"}`;
  const orphans = [...alerts.values()].filter((a) => !beds.has(key(a.ward, a.bed)) &&
    (!wardFilter || !a.ward || a.ward === wardFilter));
  const strip = $("#ward-alerts");
  strip.hidden = orphans.length === 0;
  strip.replaceChildren(...orphans.map((a) => alertCard(a)));
}

const schedule = coalesce(render);

function onSnapshot(snapshot) {
  beds.clear();
  alerts.clear();
  for (const a of snapshot.alerts || []) alerts.set(a.id, a);
  for (const b of snapshot.beds || []) {
    const { alerts: _ignored, ...state } = b;
    beds.set(key(b.ward, b.bed), state);
  }
  schedule();
}

function onEvent(event) {
  if (event.type === "state") {
    const k = key(event.ward, event.bed);
    if (!event.state || event.state.patient_id === null) beds.delete(k);
    else beds.set(k, event.state);
  } else if (event.type === "alert" && event.alert && event.alert.id) {
    if (event.alert.state === "resolved") alerts.delete(event.alert.id);
    else alerts.set(event.alert.id, event.alert);
  } else {
    return;
  }
  schedule();
}

initPage();
$("#ward-select").addEventListener("change", (ev) => {
  wardFilter = ev.target.value;
  const url = new URL(location.href);
  if (wardFilter) url.searchParams.set("ward", wardFilter);
  else url.searchParams.delete("ward");
  history.replaceState(null, "", url);
  schedule();
});
wireAckButtons($("#main"));
setInterval(schedule, 15000);
connectLive({ onSnapshot, onEvent });
showForecastQuality().catch(() => { /* the ward works without it */ });
setInterval(() => showForecastQuality().catch(() => {}), 60000);
