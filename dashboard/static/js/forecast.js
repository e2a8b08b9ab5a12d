// The forecast's quality on this ward, under the tiles: what a risk figure is worth.

import { $, api } from "./common.js";

const pct = (x) => (x === null || x === undefined ? "–" : x.toFixed(2));

export async function showForecastQuality() {
  const box = $("#forecast-quality");
  if (!box) return;
  const f = await api("/api/forecast");
  if (!f.enabled) return;
  const q = f.quality;
  box.textContent = `Forecast of CRS grade ≥ 2 within 12 h (research only, not clinically ` +
    `validated): model ${f.model}. On this ward: ${q.scored} predictions scored against ` +
    `their outcome, AUROC ${pct(q.auroc)}, Brier ${pct(q.brier)}` +
    (q.scored ? "." : " (no outcome known yet).");
  box.hidden = false;
}
