// One bed as a tile of the ward overview. Severity is told by colour AND by text and
// shape; a stale or lost vital by a word and a style, never by colour alone.

import { nowMs } from "./clock.js";
import { el } from "./common.js";
import { ackButton, stateText } from "./alertcard.js";
import { activeTier, ago, fixed, gradeLevel, gradeText, TIERS } from "./format.js";
import { META } from "./meta.js";

const STATUS_TEXT = { stale: "STALE", lost: "LOST", missing: "NO DATA" };
const STATUS_RANK = { live: 0, stale: 1, missing: 2, lost: 3 };

function vitalCell(label, value, unit, vitals, names, sub = null) {
  const present = names.map((n) => vitals[n]).filter(Boolean);
  const status = present.reduce((worst, v) =>
    (STATUS_RANK[v.status] || 0) > (STATUS_RANK[worst] || 0) ? v.status : worst, "live");
  const newest = present.map((v) => v.ts).filter(Boolean).sort().pop();
  const shown = present.length ? value : "-";
  return el("div", { class: `vital vital-${present.length ? status : "missing"}`,
    title: newest ? `last reading ${ago(newest)}` : "no reading" },
  el("dt", {}, label),
  el("dd", {},
    el("span", { class: "vital-value" }, shown),
    present.length && unit ? el("span", { class: "unit" }, unit) : null),
  el("dd", { class: "vital-age" },
    status !== "live" || !present.length
      ? el("span", { class: "status-tag" }, STATUS_TEXT[present.length ? status : "missing"])
      : null,
    present.length && sub ? el("span", { class: "vital-sub" }, sub) : null,
    newest ? ` ${ago(newest, nowMs(), true)}` : ""));
}

function v(vitals, name, digits) {
  const item = vitals[name];
  return item ? fixed(item.value, digits) : "-";
}

function gradeChip(label, grade, atLeast) {
  const level = gradeLevel(grade, atLeast);
  const undecided = grade === null || grade === undefined;
  return el("div", { class: `grade grade-${level === null ? "unknown" : level}${undecided ? " undecided" : ""}`,
    title: undecided ? "not enough data to decide the grade" : "" },
  el("span", { class: "grade-label" }, label),
  el("span", { class: "grade-value" }, gradeText(grade, atLeast)));
}

function news2Chip(n) {
  if (!n) return el("div", { class: "grade grade-unknown" },
    el("span", { class: "grade-label" }, "NEWS2"), el("span", { class: "grade-value" }, "?"));
  const complete = n.complete !== false;
  const band = complete ? n.band : (n.band_at_least ? `≥${n.band_at_least}` : null);
  return el("div", { class: `grade news-${(complete ? n.band : n.band_at_least) || "unknown"}${complete ? "" : " undecided"}` },
    el("span", { class: "grade-label" }, "NEWS2"),
    el("span", { class: "grade-value" }, complete ? String(n.total) : `≥${n.total}`),
    el("span", { class: "grade-band" }, complete ? (band || "") : `incomplete${band ? " · " + band : ""}`));
}

function riskChip(risk) {
  if (!risk || risk.p === null || risk.p === undefined) return null;
  const pct = Math.round(risk.p * 100);
  const high = META !== null && risk.p >= META.risk_threshold; // alerts.risk_threshold
  return el("div", { class: `grade risk${high ? " risk-high" : ""}`,
    title: "forecast (not clinically validated)" },
  el("span", { class: "grade-label" }, "Risk"),
  el("span", { class: "grade-value" }, `${pct}%`),
  risk.horizon_h ? el("span", { class: "grade-band" }, `${risk.horizon_h} h`) : null);
}

// Tier 2 and 3 make the tile's alert box; a tier-1 advisory is a note on the tile (issue 18).
function alertBox(all) {
  const alerts = all.filter((a) => a.tier >= 2);
  if (!alerts.length) return null;
  const a = alerts[0];
  const tier = TIERS[a.tier] || { name: "Alert", shape: "●" };
  return el("div", { class: `tile-alert sev-${a.tier} state-${a.state}`, dataset: { key: a.id } },
    el("p", { class: "tile-alert-text" },
      el("strong", {}, `${tier.shape} T${a.tier} ${tier.name}: `), a.message || a.kind),
    el("p", { class: "tile-alert-meta" }, el("span", { class: "ack-state" }, stateText(a)),
      a.raised_ts ? ` · raised ${ago(a.raised_ts)}` : "",
      alerts.length > 1 ? ` · ${alerts.length - 1} more alert${alerts.length > 2 ? "s" : ""}` : ""),
    ackButton(a));
}

export function bedTile(bed) {
  const vitals = bed.vitals || {};
  const alerts = (bed.alerts || []).filter((a) => a.state !== "resolved");
  const tier = activeTier(alerts);
  const sev = TIERS[tier];
  const bp = vitals.sbp || vitals.dbp ? `${v(vitals, "sbp", 0)}/${v(vitals, "dbp", 0)}`
    : (vitals.map ? v(vitals, "map", 0) : "-");
  const bpSub = (vitals.sbp || vitals.dbp) && vitals.map ? `MAP ${v(vitals, "map", 0)}`
    : (vitals.map ? "MAP" : null);
  const offline = bed.device === "offline";
  return el("article", {
    class: `tile tier-${tier}${offline ? " device-offline" : ""}`,
    dataset: { key: `${bed.ward}/${bed.bed}`, ward: bed.ward, bed: bed.bed, patient: bed.patient_id || "" },
    tabindex: "-1",
    "aria-label": `Bed ${bed.bed} ${bed.ward}, ${sev ? sev.name : "no active alert"}`,
  },
  el("div", { class: `tile-sev sev-${tier}` }, sev ? `${sev.shape} ${sev.name.toUpperCase()}` : "No active alert"),
  el("header", { class: "tile-head" },
    el("span", { class: "tile-bed" }, `${bed.bed}`, el("small", {}, ` ${bed.ward}`)),
    el("a", { class: "tile-patient", href: `/patients/${encodeURIComponent(bed.patient_id)}`,
      "aria-label": `Patient ${bed.patient_id}, bed ${bed.bed}` }, bed.patient_id),
    bed.day ? el("span", { class: "tile-day", title: "days since infusion" }, bed.day) : null),
  offline ? el("p", { class: "offline-tag" }, "⚠ DEVICE OFFLINE") : null,
  el("div", { class: "grades" },
    gradeChip("CRS", bed.crs_grade, bed.crs_at_least),
    gradeChip("ICANS", bed.icans_grade, bed.icans_at_least),
    news2Chip(bed.news2),
    riskChip(bed.risk)),
  el("dl", { class: "vitals" },
    vitalCell("Temp", v(vitals, "temp_c", 1), "°C", vitals, ["temp_c"]),
    vitalCell("HR", v(vitals, "hr", 0), "/min", vitals, ["hr"]),
    vitalCell("BP", bp, "", vitals, ["sbp", "dbp", "map"], bpSub),
    vitalCell("SpO₂", v(vitals, "spo2", 0), "%", vitals, ["spo2"]),
    vitalCell("RR", v(vitals, "rr", 0), "/min", vitals, ["rr"]),
    vitalCell("ACVPU", v(vitals, "acvpu"), "", vitals, ["acvpu"])),
  alertBox(alerts),
  ...alerts.filter((a) => a.tier < 2).map((a) => el("p", { class: "tile-note" }, a.message || a.kind)),
  bed.fever_masked ? el("p", { class: "tile-note" }, "Fever masked (antipyretic or anti-cytokine given)") : null);
}
