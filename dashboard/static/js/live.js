// The live feed: one WebSocket to /ws, a visible banner while it is down, reconnection with
// exponential backoff (1 s doubling to 30 s, with jitter). A "ping" from the server at least
// every 25 s; nothing for 60 s means a dead connection, which is closed and reopened.
// Closed with RESYNC (the hospital's front: one of its daemons resynchronised, went away or
// came back), the feed is opened again at once, for a fresh snapshot, without a banner.

import { syncClock } from "./clock.js";
import { $, api } from "./common.js";

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;
const SILENCE_MS = 60000;
const RESYNC = 4001; // hospital/feed.py
const RESYNC_DELAY = 200; // doubling to 5 s while connections keep ending within 10 s
const RESYNC_MAX = 5000;

export function connectLive({ onSnapshot, onEvent }) {
  const banner = $("#conn-banner");
  const detail = $("#conn-detail");
  let ws = null;
  let delay = MIN_DELAY;
  let timer = null;
  let lastMessage = Date.now();
  let countdown = null;
  let resyncDelay = RESYNC_DELAY;
  let openedAt = 0;

  function showLost(seconds) {
    if (!banner) return;
    banner.hidden = false;
    document.body.classList.add("offline");
    let left = seconds;
    detail.textContent = `Reconnecting in ${left} s…`;
    clearInterval(countdown);
    countdown = setInterval(() => {
      left -= 1;
      detail.textContent = left > 0 ? `Reconnecting in ${left} s…` : "Reconnecting…";
      if (left <= 0) clearInterval(countdown);
    }, 1000);
  }

  function showUp() {
    clearInterval(countdown);
    if (banner) banner.hidden = true;
    document.body.classList.remove("offline");
  }

  function open() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/ws`);
    ws.addEventListener("open", () => { lastMessage = openedAt = Date.now(); });
    ws.addEventListener("message", (m) => {
      lastMessage = Date.now();
      let event;
      try { event = JSON.parse(m.data); } catch { return; }
      syncClock(event);
      if (event.type === "snapshot") {
        delay = MIN_DELAY;
        showUp();
        onSnapshot(event);
      } else if (event.type === "states") {
        for (const state of event.states || []) onEvent(state); // bed states sent together
      } else if (event.type !== "ping") {
        onEvent(event);
      }
    });
    ws.addEventListener("close", (e) => {
      if (e.code === RESYNC && !timer) {
        resyncDelay = Date.now() - openedAt < 10000 ? Math.min(resyncDelay * 2, RESYNC_MAX) : RESYNC_DELAY;
        timer = setTimeout(() => { timer = null; open(); }, resyncDelay);
      } else {
        lost();
      }
    });
  }

  async function lost() {
    if (timer) return;
    const wait = delay + Math.floor(Math.random() * delay * 0.3);
    delay = Math.min(delay * 2, MAX_DELAY);
    showLost(Math.ceil(wait / 1000));
    timer = setTimeout(() => { timer = null; open(); }, wait);
    // logged out (session expired) rather than disconnected? api() goes to the login page
    try { await api("/api/me"); } catch { /* the server is down: keep trying */ }
  }

  setInterval(() => {
    if (ws && ws.readyState === WebSocket.OPEN && Date.now() - lastMessage > SILENCE_MS) {
      ws.close();
    }
  }, 10000);
  open();
}
