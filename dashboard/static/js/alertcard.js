// One alert as a card (on-call list, alert page) and the acknowledge/snooze/resolve actions.

import { api, el, notify, user } from "./common.js";
import { ago, dateTime, receiversText, TIERS } from "./format.js";

const pending = new Set(); // alert ids with an acknowledgement on its way
const listeners = [];

// fn(alert) with the alert as the server answered an action: each page shows it at once,
// without waiting for the live feed.
export function onAlertChanged(fn) {
  listeners.push(fn);
}

export async function act(alertId, action, body) {
  try {
    const result = await api(`/api/alerts/${encodeURIComponent(alertId)}/${action}`,
      { method: "POST", body });
    const done = { ack: "Acknowledged", snooze: "Snoozed", resolve: "Resolved" }[action];
    notify(`${done}.`);
    if (result && result.id) for (const fn of listeners) fn(result);
    return result;
  } catch (e) {
    notify(`Could not ${action === "ack" ? "acknowledge" : action}: ${e.message}`, "error");
    return null;
  }
}

const when = (ts) => (ts ? ` at ${dateTime(ts)}` : "");

export function stateText(a) {
  if (a.state === "acknowledged") {
    return `Acknowledged${a.acked_by ? " by " + a.acked_by : ""}${when(a.acked_ts)}`;
  }
  if (a.state === "snoozed") {
    return `Snoozed${a.snoozed_by ? " by " + a.snoozed_by : ""} until ${dateTime(a.snoozed_until)}`;
  }
  if (a.state === "resolved") {
    return `Resolved${a.resolved_by ? " by " + a.resolved_by : ""}${when(a.resolved_ts || a.ts)}`;
  }
  return "Not acknowledged";
}

export function ackButton(a) {
  if (!user.can("ack") || a.state === "acknowledged" || a.state === "resolved") return null;
  const busy = pending.has(a.id);
  // aria-disabled, not disabled: a disabled button loses focus to the page's body
  return el("button", { type: "button", class: "btn btn-ack", dataset: { ack: a.id },
    "aria-disabled": busy ? "true" : null, "aria-label": `Acknowledge: ${a.message || a.kind}` },
  busy ? "Acknowledging…" : "Acknowledge");
}

// "raised 4 min ago (14:05)": an age and the clock time it counts from.
// An alert's age counts from when it reached its current tier (issue 18: `tier_ts`).
export function raisedText(a) {
  if (a.tier_ts && a.raised_ts && a.tier_ts !== a.raised_ts) {
    return `tier ${a.tier} since ${ago(a.tier_ts)} (${dateTime(a.tier_ts)}; raised ${dateTime(a.raised_ts)})`;
  }
  return a.raised_ts ? `raised ${ago(a.raised_ts)} (${dateTime(a.raised_ts)})` : "";
}

export function alertCard(a, { link = true, reason = false } = {}) {
  const tier = TIERS[a.tier] || { name: "Alert", shape: "●" };
  const where = [a.ward, a.bed].filter(Boolean).join(" · ");
  return el("article", { class: `alert-card sev-${a.tier} state-${a.state}`, dataset: { key: a.id },
    tabindex: "-1", "aria-label": `${tier.name} alert, ${where || "system"}` },
    el("div", { class: "alert-top" },
      el("span", { class: `sev-badge sev-${a.tier}` }, `${tier.shape} ${tier.name}`),
      el("span", { class: "alert-where" }, where || "system"),
      a.patient_id ? el("a", { href: `/patients/${encodeURIComponent(a.patient_id)}` },
        a.patient_id) : null,
      el("span", { class: "alert-age" }, raisedText(a))),
    el("p", { class: "alert-message" }, a.message || a.kind),
    reason && a.reason ? el("p", { class: "alert-reason muted" }, `Last decision: ${a.reason}`) : null,
    el("p", { class: "alert-meta" },
      el("span", { class: `ack-state ack-${a.state}` }, stateText(a)),
      a.escalation_level ? el("span", { class: "chip chip-warn" },
        `Escalated ×${a.escalation_level}`) : null,
      a.told && a.told.length ? el("span", { class: "muted" },
        `Told: ${receiversText(a.told)}`) : null),
    el("div", { class: "alert-actions" },
      ackButton(a),
      link ? el("a", { class: "btn btn-quiet", href: `/alerts/${encodeURIComponent(a.id)}`,
        "aria-label": `Open alert: ${a.message || a.kind}` }, "Open") : null));
}

// Clicks on any [data-ack] button inside root acknowledge that alert (Enter or Space on a
// focused button is a click too). `rerender` redraws the page: the button says
// "Acknowledging…" until the answer, then the tile or card shows the acknowledgement.
export function wireAckButtons(root, rerender = () => {}) {
  root.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-ack]");
    if (!button || button.getAttribute("aria-disabled") === "true") return;
    const id = button.dataset.ack;
    const holder = button.closest("[data-key][tabindex]");
    pending.add(id);
    button.setAttribute("aria-disabled", "true");
    button.textContent = "Acknowledging…";
    await act(id, "ack");
    pending.delete(id);
    rerender();
    requestAnimationFrame(() => {
      if (document.activeElement === document.body && holder && holder.isConnected) {
        holder.focus({ preventScroll: true });
      }
    });
  });
}
