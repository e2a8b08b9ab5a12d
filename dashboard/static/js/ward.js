// The ward overview: one tile per admitted bed, worst first, kept live from /ws. Each bed
// keeps its tile: an update patches what changed in place (a press and its release land on
// the same button, focus stays), and the order only changes between presses.

import { $, coalesce, el, initPage, pressWatch, syncList } from "./common.js";
import { alertCard, onAlertChanged, wireAckButtons } from "./alertcard.js";
import { compareBeds } from "./format.js";
import { showForecastQuality } from "./forecast.js";
import { connectLive } from "./live.js";
import { bedTile } from "./tile.js";

const beds = new Map(); // "ward/bed" -> state
const alerts = new Map(); // id -> alert
const tiles = new Map(); // "ward/bed" -> its tile, patched in place
const orphanCards = new Map(); // alert id -> card of an alert without an admitted bed
const params = new URLSearchParams(location.search);
let wardFilter = params.get("ward") || "";
let pressed = () => false; // a pointer is down on the tiles: keep the order until it is up

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
    // only the options change: the select itself (and its focus) stays
    const options = [el("option", { value: "" }, "All wards"), ...wards.map((w) => el("option", { value: w }, w))];
    for (const o of [...select.options].slice(1)) o.remove();
    select.append(...options.slice(1));
  }
  if (select.value !== wardFilter) select.value = wardFilter;
}

function render() {
  renderWardSelect();
  const list = [...beds.values()]
    .filter((b) => !wardFilter || b.ward === wardFilter)
    .map((b) => ({ ...b, alerts: alertsOf(b.ward, b.bed) }))
    .sort(compareBeds);
  syncList($("#tiles"), list.map((b) => ({ key: key(b.ward, b.bed), node: bedTile(b) })), tiles, {
    hold: () => pressed(),
    empty: el("p", { class: "muted empty" },
      `No admitted beds${wardFilter ? ` on ward ${wardFilter}` : ""}.`),
  });
  $("#bed-count").textContent = `${list.length} bed${list.length === 1 ? "" : "s"}`;
  const orphans = [...alerts.values()].filter((a) => !beds.has(key(a.ward, a.bed)) &&
    (!wardFilter || !a.ward || a.ward === wardFilter));
  const strip = $("#ward-alerts");
  strip.hidden = orphans.length === 0;
  syncList(strip, orphans.map((a) => ({ key: a.id, node: alertCard(a) })), orphanCards);
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

function setAlert(alert) {
  if (alert.state === "resolved") alerts.delete(alert.id);
  else alerts.set(alert.id, alert);
}

function onEvent(event) {
  if (event.type === "state") {
    const k = key(event.ward, event.bed);
    if (!event.state || event.state.patient_id === null) beds.delete(k);
    else beds.set(k, event.state);
  } else if (event.type === "alert" && event.alert && event.alert.id) {
    setAlert(event.alert);
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
const box = $("#tiles");
pressed = pressWatch(box, schedule);
onAlertChanged((a) => { if (alerts.has(a.id) || a.state !== "resolved") { setAlert(a); schedule(); } });
wireAckButtons($("#main"), schedule);
setInterval(schedule, 5000); // ages ("3 min") stay true
connectLive({ onSnapshot, onEvent });
showForecastQuality().catch(() => { /* the ward works without it */ });
setInterval(() => showForecastQuality().catch(() => {}), 60000);
