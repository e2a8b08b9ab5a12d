// Formatting shared by the pages: times (epoch seconds or ISO strings), grades, tiers.

import { nowMs } from "./clock.js";

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
  else text = `${Math.floor(s / 86400)} d`;
  return short ? text : `${text} ago`;
}

const pad = (n) => String(n).padStart(2, "0");

export function hm(ts) {
  const ms = toMs(ts);
  if (ms === null) return "-";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// "25 Nov 14:05": short, the same in every locale, 24-hour like a ward's charts.
export function dateTime(ts) {
  const ms = toMs(ts);
  if (ms === null) return "-";
  const d = new Date(ms);
  return `${d.getDate()} ${MONTHS[d.getMonth()]} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// An axis label: "14:00", or "25 Nov" at midnight.
export function axisTime(ts) {
  const d = new Date(ts * 1000);
  if (d.getHours() === 0 && d.getMinutes() === 0) return `${d.getDate()} ${MONTHS[d.getMonth()]}`;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
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
  return (told || []).map((r) => r.replaceAll("_", " ")).join(", ");
}
