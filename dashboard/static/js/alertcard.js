// One alert as a card (on-call list, alert page) and the acknowledge/snooze/resolve actions.

import { api, el, notify, user } from "./common.js";
import { ago, dateTime, receiversText, TIERS } from "./format.js";

export async function act(alertId, action, body) {
  try {
    const result = await api(`/api/alerts/${encodeURIComponent(alertId)}/${action}`,
      { method: "POST", body });
    const done = { ack: "Acknowledged", snooze: "Snoozed", resolve: "Resolved" }[action];
    notify(`${done}.`);
    return result;
  } catch (e) {
    notify(`Could not ${action === "ack" ? "acknowledge" : action}: ${e.message}`, "error");
    return null;
  }
}

export function stateText(a) {
  if (a.state === "acknowledged" && a.acked_by) {
    return `Acknowledged by ${a.acked_by}${a.acked_ts ? " at " + dateTime(a.acked_ts) : ""}`;
  }
  if (a.state === "snoozed") {
    return `Snoozed by ${a.snoozed_by || "?"} until ${dateTime(a.snoozed_until)}`;
  }
  if (a.state === "resolved") {
    return `Resolved${a.resolved_by ? " by " + a.resolved_by : ""} ${dateTime(a.resolved_ts)}`;
  }
  return "Not acknowledged";
}

export function ackButton(a) {
  if (!user.can("ack") || a.state === "acknowledged" || a.state === "resolved") return null;
  return el("button", { type: "button", class: "btn btn-ack", dataset: { ack: a.id } },
    "Acknowledge");
}

export function alertCard(a, { link = true, reason = false } = {}) {
  const tier = TIERS[a.tier] || { name: "Alert", shape: "●" };
  const where = [a.ward, a.bed].filter(Boolean).join(" · ");
  return el("article", { class: `alert-card sev-${a.tier} state-${a.state}` },
    el("div", { class: "alert-top" },
      el("span", { class: `sev-badge sev-${a.tier}` }, `${tier.shape} ${tier.name}`),
      el("span", { class: "alert-where" }, where || "system"),
      a.patient_id ? el("a", { href: `/patients/${encodeURIComponent(a.patient_id)}` },
        a.patient_id) : null,
      el("span", { class: "muted" }, a.tier_ts && a.tier_ts !== a.raised_ts
        ? `tier ${a.tier} since ${ago(a.tier_ts)}` : `raised ${ago(a.raised_ts)}`)),
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
      link ? el("a", { class: "btn btn-quiet", href: `/alerts/${encodeURIComponent(a.id)}` },
        "Open") : null));
}

// Clicks on any [data-ack] button inside root acknowledge that alert.
export function wireAckButtons(root, after) {
  root.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-ack]");
    if (!button) return;
    button.disabled = true;
    button.textContent = "Acknowledging…";
    const result = await act(button.dataset.ack, "ack");
    if (!result) {
      button.disabled = false;
      button.textContent = "Acknowledge";
    }
    if (after) after(result);
  });
}
