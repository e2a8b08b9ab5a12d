// Shared by every page: DOM helper, the API client (CSRF header, one error shape),
// notices and the header's logout button.

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

export function initPage() {
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
