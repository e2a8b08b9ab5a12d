import { zone } from "./clock.js";
import { axisTime } from "./format.js";
import { META } from "./meta.js";

// Trend charts of one admission (uPlot, vendored): temperature, heart rate, blood
// pressure, SpO2, respiration and the grade timeline, on one shared time axis with the
// care events marked on every chart.

const STEROIDS = META ? META.steroids : [];
const COLORS = {
  oxygen: "#1570ef", vasopressor: "#d92d20", tocilizumab: "#7a2e98", steroid: "#c4540a",
  neuro: "#0e7c66", other: "#667085",
};

export function markerKind(ev) {
  if (ev.type === "oxygen") return "oxygen";
  if (ev.type === "vasopressor") return "vasopressor";
  if (ev.type === "neuro") return "neuro";
  if (ev.drug === "tocilizumab") return "tocilizumab";
  if (STEROIDS.includes(ev.drug)) return "steroid";
  return "other";
}

export function markerLabel(ev) {
  if (ev.type === "oxygen") return ev.device === "room_air" ? "air" : "O₂";
  if (ev.type === "vasopressor") return `${(ev.drug || "").slice(0, 4)} ${ev.action || ""}`;
  if (ev.type === "neuro") return ev.ice_score !== undefined ? `ICE ${ev.ice_score}` : "neuro";
  return (ev.drug || "").slice(0, 5);
}

// Vertical lines for care events, horizontal dashed lines for thresholds.
function overlay(markers, thresholds, labels) {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        const { left, top, width, height } = u.bbox;
        const px = devicePixelRatio || 1;
        ctx.save();
        ctx.lineWidth = 1 * px;
        ctx.setLineDash([4 * px, 4 * px]);
        for (const [value, color] of thresholds) {
          const y = u.valToPos(value, "y", true);
          if (y < top || y > top + height) continue;
          ctx.strokeStyle = color;
          ctx.beginPath();
          ctx.moveTo(left, y);
          ctx.lineTo(left + width, y);
          ctx.stroke();
        }
        ctx.setLineDash([]);
        ctx.font = `${11 * px}px system-ui, sans-serif`;
        let row = 0;
        let lastX = -1e9;
        for (const m of markers) {
          const x = u.valToPos(m.ts, "x", true);
          if (x < left || x > left + width) continue;
          ctx.strokeStyle = COLORS[m.kind];
          ctx.lineWidth = 2 * px;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          if (labels) { // close labels step down so they do not overlap
            row = x - lastX < 60 * px ? (row + 1) % 3 : 0;
            lastX = x;
            ctx.fillStyle = COLORS[m.kind];
            ctx.fillText(m.label, x + 3 * px, top + (12 + 12 * row) * px);
          }
        }
        ctx.restore();
      }],
    },
  };
}

let generation = 0; // each redraw syncs its own charts only

function series(label, color, extra = {}) {
  return { label, stroke: color, width: 2, spanGaps: true, points: { size: 5 }, ...extra };
}

// Threshold lines: CRS fever, NEWS2's 3-point heart and respiration rates, CRS hypotension
// (systolic, mean) and room-air hypoxaemia, all from /api/meta.
const line = (key, color) => (META && META[key] !== undefined ? [[META[key], color]] : []);
const PANELS = [
  { title: "Temperature", unit: "°C", fields: [["temp_c", "Temp °C", "#c4320a"]],
    thresholds: line("fever_c", "#d92d20"), range: [35, 41] },
  { title: "Heart rate", unit: "/min", fields: [["hr", "HR /min", "#b42318"]],
    thresholds: line("news2_hr_3_above", "#d92d20"), range: [40, 160] },
  { title: "Blood pressure", unit: "mmHg",
    fields: [["sbp", "Systolic", "#1d2939"], ["dbp", "Diastolic", "#667085"], ["map", "MAP", "#1570ef"]],
    thresholds: [...line("sbp_low", "#d92d20"), ...line("map_low", "#1570ef")], range: [40, 180] },
  { title: "SpO₂", unit: "%", fields: [["spo2", "SpO₂ %", "#0e7c66"]],
    thresholds: line("spo2_low", "#d92d20"), range: [80, 100] },
  { title: "Respiration", unit: "/min", fields: [["rr", "RR /min", "#6941c6"]],
    thresholds: line("news2_rr_3_above", "#d92d20"), range: [5, 35] },
];

function panelData(observations, fields) {
  const rows = observations.filter((o) => fields.some(([f]) => o[f] !== undefined));
  return [rows.map((o) => o.ts), ...fields.map(([f]) => rows.map((o) => o[f] ?? null))];
}

function gradeData(grades, end) {
  const xs = grades.map((g) => g.ts);
  const crs = grades.map((g) => g.crs_grade ?? g.crs_at_least ?? null);
  const icans = grades.map((g) => g.icans_grade ?? g.icans_at_least ?? null);
  if (grades.length && end > xs[xs.length - 1]) {
    xs.push(end);
    crs.push(crs[crs.length - 1]);
    icans.push(icans[icans.length - 1]);
  }
  return [xs, crs, icans];
}

function softRange(lo, hi) {
  return (u, min, max) => [Math.min(lo, min ?? lo), Math.max(hi, max ?? hi)];
}

export function drawCharts(box, history, now, previous = []) {
  const { uPlot } = window;
  for (const old of previous) old.destroy();
  const adm = history.admissions[history.admissions.length - 1];
  const obs = history.observations;
  const start = Math.min(adm.admitted_ts, obs.length ? obs[0].ts : adm.admitted_ts);
  const end = Math.max(now, obs.length ? obs[obs.length - 1].ts : now);
  const markers = history.care.map((ev) => ({ ts: ev.ts, kind: markerKind(ev), label: markerLabel(ev) }));
  const width = Math.max(280, box.clientWidth - 8);
  const sync = uPlot.sync(`patient-${++generation}`);
  const charts = [];
  box.replaceChildren();
  const make = (title, data, seriesList, opts) => {
    const holder = document.createElement("div");
    holder.className = "chart";
    const h = document.createElement("h3");
    h.textContent = title;
    holder.append(h);
    box.append(holder);
    const chart = new uPlot({
      width, height: opts.height || 160,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone), // ticks in the ward's zone
      cursor: { sync: { key: sync.key }, drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => [start, end] }, y: { range: opts.range } },
      axes: [{ stroke: "#475467", grid: { stroke: "#eaecf0" },
        values: (u, splits) => splits.map(axisTime) },
        { stroke: "#475467", grid: { stroke: "#eaecf0" }, size: 48, ...(opts.axis || {}) }],
      series: [{}, ...seriesList],
      plugins: [overlay(markers, opts.thresholds || [], opts.labels)],
      legend: { live: true },
    }, data, holder);
    sync.sub(chart);
    charts.push(chart);
  };
  PANELS.forEach((p, i) => {
    make(`${p.title} (${p.unit})`, panelData(obs, p.fields),
      p.fields.map(([, label, color]) => series(label, color)),
      { range: softRange(...p.range), thresholds: p.thresholds, labels: i === 0 });
  });
  const stepped = uPlot.paths.stepped({ align: 1 });
  make("Grades (undecided: the lowest possible grade)", gradeData(history.grades, end), [
    series("CRS", "#b42318", { paths: stepped, points: { show: false } }),
    series("ICANS", "#6941c6", { paths: stepped, points: { show: false }, dash: [6, 3] }),
  ], { range: [0, 4.2], height: 130, labels: true, axis: { splits: () => [0, 1, 2, 3, 4] } });
  return charts;
}

export function resizeCharts(box, charts) {
  const width = Math.max(280, box.clientWidth - 8);
  for (const c of charts) c.setSize({ width, height: c.height });
}
