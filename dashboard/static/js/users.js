// Accounts (admins): the list with disable/enable and "end sessions", and a form to
// create one. Disabling or ending sessions closes that user's open pages at once.

import { $, api, el, initPage, notify } from "./common.js";
import { dateTime } from "./format.js";

async function act(name, action, label) {
  try {
    const r = await api(`/api/users/${encodeURIComponent(name)}/${action}`, { method: "POST" });
    notify(`${label}: ${name}` + (r.live_pages_closed ? ` (${r.live_pages_closed} open pages closed)` : ""));
  } catch (e) {
    notify(e.message);
  }
  load();
}

function actions(u) {
  const button = (text, action, label) => {
    const b = el("button", { class: "btn", type: "button" }, text);
    b.addEventListener("click", () => act(u.username, action, label));
    return b;
  };
  return el("td", {},
    u.disabled ? button("Enable", "enable", "Enabled") : button("Disable", "disable", "Disabled"),
    " ", button("End sessions", "revoke", "Sessions ended"));
}

async function load() {
  const users = await api("/api/users");
  $("#users-table tbody").replaceChildren(...users.map((u) => el("tr", {},
    el("td", {}, u.username), el("td", {}, u.role), el("td", {}, dateTime(u.created_ts)),
    el("td", {}, u.disabled ? "disabled" : u.locked ? "locked (failed logins)" : "active"),
    actions(u))));
}

initPage();
const form = $("#user-form");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = form.querySelector(".form-error");
  error.hidden = true;
  try {
    const body = { username: $("#new-username").value.trim(), role: $("#new-role").value,
      password: $("#new-password").value };
    await api("/api/users", { method: "POST", body });
    notify(`Account ${body.username} created.`);
    form.reset();
    load();
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  }
});
load();
