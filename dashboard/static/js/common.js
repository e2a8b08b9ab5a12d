// Shared by every page: DOM helpers (build, patch in place, keyed lists), the API client
// (CSRF header, one error shape), notices, the header's ward clock and logout button.

import { clockRate, nowMs, onClockSync, pacing } from "./clock.js";
import { clockText, zoneName } from "./format.js";

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// el("div", {class: "x", text: "hi", dataset: {id: 1}}, child...): never innerHTML.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// A pointer is down on `box`: the returned `pressed()` says so until it is up (or
// cancelled); `onRelease` runs after the click that release makes. Pages hold their order
// (or redraw nothing) meanwhile, so press and release land on the same element.
export function pressWatch(box, onRelease) {
  let down = false;
  box.addEventListener("pointerdown", () => { down = true; });
  for (const type of ["pointerup", "pointercancel"]) {
    window.addEventListener(type, () => {
      if (!down) return;
      down = false;
      setTimeout(onRelease, 0); // after the click this release makes
    });
  }
  return () => down;
}

// Two nodes are the same thing when their tag and key (data-key, data-ack) agree: a
// button that now stands for another alert is a new button, never a relabelled one.
function same(a, b) {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) return false;
  if (a.nodeType !== Node.ELEMENT_NODE) return true;
  return a.getAttribute("data-key") === b.getAttribute("data-key") &&
    a.getAttribute("data-ack") === b.getAttribute("data-ack");
}

// Make `node` look like `next` (freshly built), changing only what differs: text, attributes,
// children. The nodes stay, so a press and its release land on the same button, focus
// stays where it was and a form field keeps what is typed in it. Returns the node in place.
export function patch(node, next) {
  if (!same(node, next)) {
    node.replaceWith(next);
    return next;
  }
  if (node.nodeType === Node.TEXT_NODE) {
    if (node.data !== next.data) node.data = next.data;
    return node;
  }
  if (node.nodeType !== Node.ELEMENT_NODE) return node;
  for (const a of [...node.attributes]) if (!next.hasAttribute(a.name)) node.removeAttribute(a.name);
  for (const a of [...next.attributes]) {
    if (node.getAttribute(a.name) !== a.value) node.setAttribute(a.name, a.value);
  }
  if ("disabled" in node && node.disabled !== next.disabled) node.disabled = next.disabled;
  const old = [...node.childNodes];
  const neu = [...next.childNodes];
  neu.forEach((child, i) => {
    if (i < old.length) patch(old[i], child);
    else node.append(child);
  });
  for (let i = neu.length; i < old.length; i += 1) old[i].remove();
  return node;
}

// Keep box's children as one node per item, in order, patched in place. items: [{key,
// node}] freshly built; `hold()` true keeps the current order (a press is under way).
// The element that had focus keeps it (a moved node would otherwise drop it to <body>).
export function syncList(box, items, nodes, { hold = () => false, empty = null } = {}) {
  const focused = document.activeElement;
  const holder = focused && focused.closest ? focused.closest("[data-key][tabindex]") : null;
  const seen = new Set();
  const wanted = items.map(({ key, node }) => {
    seen.add(key);
    const old = nodes.get(key);
    const kept = old ? patch(old, node) : node;
    nodes.set(key, kept);
    return kept;
  });
  for (const [key, node] of [...nodes]) {
    if (!seen.has(key)) {
      node.remove();
      nodes.delete(key);
    }
  }
  for (const child of [...box.children]) if (!child.dataset.key) child.remove();
  if (!wanted.length) {
    if (empty) box.append(empty);
  } else if (hold()) {
    for (const node of wanted) if (node.parentNode !== box) box.append(node);
  } else {
    wanted.forEach((node, i) => {
      if (box.children[i] !== node) box.insertBefore(node, box.children[i] || null);
    });
  }
  keepFocus(focused, holder);
}

// After a redraw: focus back on the element that had it (moved nodes lose it), or, when
// it is gone (an acknowledged alert's button), on its tile or card: never on <body>.
export function keepFocus(focused, holder) {
  if (!focused || focused === document.body || focused === document.activeElement) return;
  if (focused.isConnected) focused.focus({ preventScroll: true });
  else if (holder && holder.isConnected) holder.focus({ preventScroll: true });
}

export const user = {
  name: document.body.dataset.user || "",
  role: document.body.dataset.role || "",
  can(permission) {
    const perms = {
      nurse: ["view", "ack", "care"],
      physician: ["view", "ack", "care", "override"],
      admin: ["view", "users"],
    };
    return (perms[this.role] || []).includes(permission);
  },
};

export function csrf() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function toLogin() {
  const next = location.pathname + location.search;
  location.assign("/login?next=" + encodeURIComponent(next));
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Try again.");
  }
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (resp.status === 401 && path !== "/api/login") toLogin();
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(resp.status, e.code || "http", e.message || `HTTP ${resp.status}`);
  }
  return data;
}

let noticeTimer = null;
export function notify(message, kind = "ok") {
  const box = $("#notice");
  if (!box) return;
  box.textContent = message;
  box.className = `notice notice-${kind}`;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 9000 : 4000);
}

// The header's ward clock: the daemon's time in the ward's zone, and in the demo its
// pace ("simulated 120×") and how far the daemon is behind the simulated ward.
function showClock() {
  const box = $("#ward-clock");
  if (!box) return;
  const now = nowMs();
  const rate = clockRate();
  const { asked, behind } = pacing();
  const text = `${clockText(now)} ${zoneName(now)}`;
  $("#ward-clock-time").textContent = text;
  const pace = $("#ward-clock-pace");
  if (rate !== 1 || asked) {
    // the demo (or a replay): "demo 49× (slowed from 120×) · keeping up"
    let line = `demo ${Math.round(rate)}×`;
    if (asked && asked > rate * 1.05) line += ` (slowed from ${Math.round(asked)}×)`;
    if (behind !== null && behind !== undefined) {
      line += behind >= 1 ? ` · daemon ${Math.round(behind)} s behind` : " · keeping up";
    }
    pace.textContent = line;
    pace.title = `Simulated time runs ${Math.round(rate)} times as fast as the wall clock` +
      (asked && asked > rate * 1.05 ? `, slowed from ${Math.round(asked)}× because the daemon fell behind` : "") +
      "; \"behind\": how far the daemon's newest reading lags the simulated ward.";
    pace.hidden = false;
  } else {
    pace.hidden = true;
  }
}

export function initPage() {
  showClock();
  setInterval(showClock, 1000);
  onClockSync(showClock);
  const logout = $("#logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try { await api("/api/logout", { method: "POST" }); } catch { /* gone anyway */ }
      location.assign("/login");
    });
  }
}

// Run fn at most once per animation frame, however often it is asked for.
export function coalesce(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fn(); });
  };
}
