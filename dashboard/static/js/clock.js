// The daemon's clock, as the page sees it. The page is rendered with the daemon's "now"
// (epoch seconds), its rate (1 in a ward; faster in the demo or a replay) and the ward's
// time zone (data-now, data-rate, data-zone on <body>); every live message carries "now"
// and "rate" again. Ages, chart ends and the header's ward clock use that clock, and every
// time shown is in the ward's zone (the zone the daemon writes its reasons in), named in
// the page header.

const body = document.body.dataset;
let base = null; // { server: ms, local: ms, rate }
let status = { asked: null, behind: null }; // the demo's pacing, when there is one
const listeners = [];

export const zone = body.zone || "UTC";

function setBase(now, rate) {
  base = { server: now * 1000, local: Date.now(), rate: rate || 1 };
}

if (body.now && Number.isFinite(Number(body.now))) setBase(Number(body.now), Number(body.rate));

export function syncClock(event) {
  if (event && typeof event.now === "number") {
    setBase(event.now, event.rate);
    status = { asked: event.asked_rate ?? null, behind: event.behind_s ?? null };
    for (const fn of listeners) fn();
  }
}

// The daemon's now, in milliseconds.
export function nowMs() {
  return base ? base.server + (Date.now() - base.local) * base.rate : Date.now();
}

export function clockRate() {
  return base ? base.rate : 1;
}

export function pacing() {
  return status;
}

// fn() after every sync with the server (ages can be redrawn on the new clock).
export function onClockSync(fn) {
  listeners.push(fn);
}
