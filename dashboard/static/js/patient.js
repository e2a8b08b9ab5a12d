// The patient view: trends with care events and grades on one time axis, the grade
// timeline, care events, alert history, and the entry forms.

import { nowMs } from "./clock.js";
import { $, api, el, initPage, keepFocus, patch, user } from "./common.js";
import { onAlertChanged, stateText, wireAckButtons } from "./alertcard.js";
import { drawCharts, markerKind, resizeCharts } from "./charts.js";
import { dateTime, doseText, gradeText, TIERS } from "./format.js";
import { careForm, disableForms, neuroForm, overrideForm } from "./forms.js";
import { connectLive } from "./live.js";
import { bedTile } from "./tile.js";

const patientId = $("#main").dataset.patientId;
let history = null;
let charts = [];
let where = null; // {ward, bed} of the current admission
let refetchTimer = null;

function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el("table", { class: "table" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

// A name outside the drug vocabulary is free text: shown as such, it changes no grade.
const drugName = (ev) => ev.drug ?? `"${ev.drug_text}" (free text, not graded)`;

function careText(ev) {
  if (ev.type === "oxygen") {
    return [ev.device.replaceAll("_", " "), ev.flow_lpm !== undefined ? `${ev.flow_lpm} L/min` : "",
      ev.fio2 !== undefined ? `FiO₂ ${ev.fio2}` : ""].filter(Boolean).join(", ");
  }
  if (ev.type === "vasopressor") return `${ev.action} ${doseText(drugName(ev), ev.dose)}`;
  if (ev.type === "medication") return doseText(drugName(ev), ev.dose);
  const parts = [];
  if (ev.ice_score !== undefined) parts.push(`ICE ${ev.ice_score}/10`);
  if (ev.acvpu) parts.push(`ACVPU ${ev.acvpu}`);
  if (ev.seizure !== undefined) parts.push(ev.seizure ? "seizure" : "no seizure");
  if (ev.motor_weakness !== undefined) parts.push(ev.motor_weakness ? "motor weakness" : "no motor weakness");
  if (ev.cerebral_edema !== undefined) parts.push(`oedema: ${ev.cerebral_edema ?? "none"}`);
  return parts.join(", ");
}

function renderLists(h) {
  const rows = [
    ...h.grades.map((g) => ({ ts: g.ts, node: el("tr", {},
      el("td", { class: "when" }, dateTime(g.ts)),
      el("td", {}, gradeText(g.crs_grade, g.crs_at_least)),
      el("td", {}, gradeText(g.icans_grade, g.icans_at_least)),
      el("td", {}, g.news2_complete ? `${g.news2_total} ${g.news2_band || ""}` : `≥${g.news2_total} (incomplete)`),
      el("td", { class: "small" }, (g.late ? "late reading · " : "") + (g.reasons || []).join("; "))) })),
    ...h.overrides.map((o) => ({ ts: o.ts, node: el("tr", { class: "override-row" },
      el("td", { class: "when" }, dateTime(o.ts)),
      el("td", { colspan: 3 }, `${o.scale.toUpperCase()} ${o.grade} set by ${o.username}`),
      el("td", { class: "small" }, o.reason)) })),
  ].sort((a, b) => b.ts - a.ts).map((r) => r.node);
  $("#grade-list").replaceChildren(table(["Time", "CRS", "ICANS", "NEWS2", "Why"], rows,
    "No grades yet."));
  const care = [...h.care].reverse().map((ev) => el("tr", {},
    el("td", { class: "when" }, dateTime(ev.ts)),
    el("td", {}, el("span", { class: `mk mk-${markerKind(ev)}` }, "│ "), ev.type),
    el("td", {}, careText(ev))));
  $("#care-list").replaceChildren(table(["Time", "Type", "Details"], care, "No care events yet."));
  const alerts = [...h.alerts].reverse().map((a) => {
    const rec = { ...a.record, state: a.state };
    const tier = TIERS[a.tier] || { name: "", shape: "" };
    return el("tr", {},
      el("td", { class: "when" }, dateTime(a.raised_ts)),
      el("td", {}, el("span", { class: `sev-badge sev-${a.tier}` }, `${tier.shape} ${tier.name}`)),
      el("td", {}, el("a", { href: `/alerts/${encodeURIComponent(a.id)}` }, rec.message || a.kind)),
      el("td", {}, stateText(rec)),
      el("td", { class: "small" }, a.events.map((e) => `${dateTime(e.ts)} ${e.event}`).join(" · ")));
  });
  $("#alert-history").replaceChildren(table(["Raised", "Tier", "Alert", "Acknowledged / state",
    "Events"], alerts, "No alerts for this patient."));
}

function renderHead(h) {
  const adm = h.admissions[h.admissions.length - 1];
  const current = h.current;
  where = current ? { ward: current.ward, bed: current.bed } : null;
  $("#p-where").textContent = current ? `${current.ward} · bed ${current.bed}`
    : `discharged from ${adm.ward} · ${adm.bed}`;
  $("#p-day").textContent = current && current.day ? current.day : "";
  $("#p-day").hidden = !(current && current.day);
  $("#p-product").textContent = [adm.product, adm.indication, adm.age ? `age ${adm.age}` : ""]
    .filter(Boolean).join(" · ");
  renderNow(current);
  if (!current) disableForms("This patient is not admitted: nothing can be entered.");
}

function renderNow(state) {
  const box = $("#p-now");
  if (!state) {
    box.replaceChildren();
    return;
  }
  const alerts = (history ? history.alerts : []).filter((a) => a.state !== "resolved")
    .map((a) => ({ ...a.record, id: a.id, state: a.state, tier: a.tier }));
  const adm = history ? history.admissions[history.admissions.length - 1] : null;
  const last = (history ? history.overrides : []).slice(-1)[0];
  const next = [bedTile({ ...state, alerts }), el("section", { class: "panel why", dataset: { key: "why" } },
    el("h2", {}, "Why these grades"),
    (state.reasons || []).length
      ? el("ul", { class: "reasons" }, state.reasons.map((r) => el("li", {}, r)))
      : el("p", { class: "muted" }, "No findings."),
    adm ? el("p", { class: "muted small" },
      `Admitted ${dateTime(adm.admitted_ts)}`,
      adm.infusion_ts ? ` · CAR-T infusion ${dateTime(adm.infusion_ts)}` : "") : null,
    last ? el("p", { class: "override-note" },
      `Physician: ${last.scale.toUpperCase()} ${last.grade} (${last.username}, ` +
      `${dateTime(last.ts)}): ${last.reason}`) : null)];
  // patched in place: an Acknowledge button pressed while a reading arrives stays the same
  const focused = document.activeElement;
  const holder = focused && focused.closest ? focused.closest("[data-key][tabindex]") : null;
  const old = [...box.children];
  if (old.length === next.length) old.forEach((n, i) => patch(n, next[i]));
  else box.replaceChildren(...next);
  keepFocus(focused, holder);
}

async function load() {
  try {
    history = await api(`/api/patients/${encodeURIComponent(patientId)}`);
  } catch (e) {
    $("#charts").replaceChildren(el("p", { class: "form-error" }, e.message));
    return;
  }
  renderHead(history);
  charts = drawCharts($("#charts"), history, nowMs() / 1000, charts);
  renderLists(history);
}

function refetchSoon() {
  if (refetchTimer) return;
  refetchTimer = setTimeout(() => { refetchTimer = null; load(); }, 10000);
}

initPage();
const target = () => `/api/beds/${encodeURIComponent(where.ward)}/${encodeURIComponent(where.bed)}/care?patient_id=${encodeURIComponent(patientId)}`;
if (user.can("care")) {
  careForm(target, load);
  neuroForm(target, load);
} else {
  for (const f of ["#care-form", "#neuro-form"]) $(f).closest(".panel").hidden = true;
}
if (user.can("override")) overrideForm(patientId, load);
wireAckButtons($("#p-now"), () => renderNow(history && history.current));
onAlertChanged((a) => { // the acknowledgement shows at once; the lists follow
  const h = history && history.alerts.find((x) => x.id === a.id);
  if (h) {
    h.state = a.state;
    h.record = { ...h.record, ...a };
    renderNow(history.current);
  }
  refetchSoon();
});
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => resizeCharts($("#charts"), charts), 150);
});
await load();
connectLive({
  onSnapshot: () => {},
  onEvent: (ev) => {
    const mine = (ev.type === "state" && ev.state && ev.state.patient_id === patientId) ||
      (ev.alert && ev.alert.patient_id === patientId) || ev.patient_id === patientId;
    if (!mine) return;
    if (ev.type === "state" && history) {
      history.current = ev.state;
      renderNow(ev.state);
    }
    refetchSoon();
  },
});
