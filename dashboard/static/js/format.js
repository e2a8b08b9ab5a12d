// Formatting shared by the pages: times (epoch seconds or ISO strings), grades, tiers,
// doses. Every clock time is shown in the ward's zone (clock.js), named in the header.

import { nowMs, zone } from "./clock.js";
import { META } from "./meta.js";

export function toMs(ts) {
  if (ts === null || ts === undefined || ts === "") return null;
  if (typeof ts === "number") return ts * 1000;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? null : t;
}

// "5 min ago"; short: "5 min" (tiles, where space is tight).
export function ago(ts, now = nowMs(), short = false) {
  const ms = toMs(ts);
  if (ms === null) return "never";
  const s = Math.max(0, (now - ms) / 1000);
  let text;
  if (s < 60) text = `${Math.round(s)} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  else text = `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  return short ? text : `${text} ago`;
}

const pad = (n) => String(n).padStart(2, "0");
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

let fmt;
try {
  fmt = new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "numeric",
    day: "numeric", hour: "numeric", minute: "numeric", second: "numeric", hourCycle: "h23" });
} catch {
  fmt = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", year: "numeric", month: "numeric",
    day: "numeric", hour: "numeric", minute: "numeric", second: "numeric", hourCycle: "h23" });
}

// The wall-clock parts of ms in the ward's zone.
export function parts(ms) {
  const p = Object.fromEntries(fmt.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { year: Number(p.year), month: Number(p.month) - 1, day: Number(p.day),
    hour: Number(p.hour) % 24, minute: Number(p.minute), second: Number(p.second) };
}

// The zone's short name at ms: "UTC", "CET", "GMT+1".
export function zoneName(ms = nowMs()) {
  try {
    const p = new Intl.DateTimeFormat("en-GB", { timeZone: zone, timeZoneName: "short" })
      .formatToParts(new Date(ms)).find((x) => x.type === "timeZoneName");
    return p ? p.value : zone;
  } catch {
    return "UTC";
  }
}

export function hm(ts) {
  const ms = toMs(ts);
  if (ms === null) return "-";
  const d = parts(ms);
  return `${pad(d.hour)}:${pad(d.minute)}`;
}

// "25 Nov 14:05": short, the same in every locale, 24-hour like a ward's charts.
export function dateTime(ts) {
  const ms = toMs(ts);
  if (ms === null) return "-";
  const d = parts(ms);
  return `${d.day} ${MONTHS[d.month]} ${pad(d.hour)}:${pad(d.minute)}`;
}

// The header's clock: "30 Nov 14:05:09".
export function clockText(ms) {
  const d = parts(ms);
  return `${d.day} ${MONTHS[d.month]} ${pad(d.hour)}:${pad(d.minute)}:${pad(d.second)}`;
}

// An axis label: "14:00", or "25 Nov" at midnight.
export function axisTime(ts) {
  const d = parts(ts * 1000);
  if (d.hour === 0 && d.minute === 0) return `${d.day} ${MONTHS[d.month]}`;
  return `${pad(d.hour)}:${pad(d.minute)}`;
}

// A decided grade, "≥n" when undecided with a lower bound, "?" when nothing is known.
export function gradeText(grade, atLeast) {
  if (grade !== null && grade !== undefined) return String(grade);
  if (atLeast !== null && atLeast !== undefined) return `≥${atLeast}`;
  return "?";
}

export function gradeLevel(grade, atLeast) {
  if (grade !== null && grade !== undefined) return grade;
  if (atLeast !== null && atLeast !== undefined) return atLeast;
  return null;
}

export const TIERS = {
  3: { name: "Emergency", shape: "▲" },
  2: { name: "Urgent", shape: "◆" },
  1: { name: "Advisory", shape: "●" },
};

export function tierLabel(tier) {
  const t = TIERS[tier];
  return t ? `${t.shape} Tier ${tier} · ${t.name}` : "No active alert";
}

export function fixed(value, digits) {
  if (value === null || value === undefined) return "-";
  return typeof value === "number" ? value.toFixed(digits) : String(value);
}

// The unit a dose of `drug` is given in, from its one declaration (/api/meta).
export function doseUnit(drug) {
  return (META && META.dose_units && META.dose_units[drug]) || null;
}

// "tocilizumab 8 mg/kg"; a drug of unknown unit says so rather than guess.
export function doseText(drug, dose) {
  if (dose === undefined || dose === null) return drug || "";
  const unit = doseUnit(drug);
  return `${drug} ${dose} ${unit || "(unit not recorded)"}`;
}

// The same order as the server's (dashboard/core.py severity_key): worst bed first.
export function severityKey(bed) {
  const tier = Math.max(0, ...(bed.alerts || []).filter((a) => a.state !== "resolved")
    .map((a) => a.tier || 0));
  let crs = -1;
  if (bed.crs_grade !== null && bed.crs_grade !== undefined) crs = bed.crs_grade;
  else if (bed.crs_at_least !== null && bed.crs_at_least !== undefined) crs = bed.crs_at_least - 0.5;
  const n = bed.news2 && bed.news2.total !== null && bed.news2.total !== undefined
    ? bed.news2.total : -1;
  return [-tier, -crs, -n];
}

const collator = new Intl.Collator(undefined, { numeric: true });

export function compareBeds(a, b) {
  const ka = severityKey(a);
  const kb = severityKey(b);
  for (let i = 0; i < ka.length; i += 1) if (ka[i] !== kb[i]) return ka[i] - kb[i];
  return collator.compare(a.ward, b.ward) || collator.compare(a.bed, b.bed);
}

export function activeTier(alerts) {
  return Math.max(0, ...(alerts || []).filter((a) => a.state !== "resolved").map((a) => a.tier || 0));
}

export function receiversText(told) {
  return (told || []).filter((r) => typeof r === "string").map((r) => r.replaceAll("_", " ")).join(", ");
}

// "2026-11-30T14:05" typed as ward time (a datetime-local field) -> epoch ms.
export function fromWardTime(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text || "");
  if (!m) return null;
  const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const p = parts(guess);
  const offset = Date.UTC(p.year, p.month, p.day, p.hour, p.minute) - guess;
  return guess - offset;
}
