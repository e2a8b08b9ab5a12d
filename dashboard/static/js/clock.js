// The daemon's clock, as the page sees it. Every live message carries the daemon's "now"
// (epoch seconds) and its rate (1 in a ward; faster in the demo or a replay): ages and
// chart ends are computed on that clock, not on the browser's.

let base = null; // { server: ms, local: ms, rate }

export function syncClock(event) {
  if (event && typeof event.now === "number") {
    base = { server: event.now * 1000, local: Date.now(), rate: event.rate || 1 };
  }
}

// The daemon's now, in milliseconds.
export function nowMs() {
  return base ? base.server + (Date.now() - base.local) * base.rate : Date.now();
}
