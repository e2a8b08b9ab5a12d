// Accounts (admins): the list, and a form to create one.

import { $, api, el, initPage, notify } from "./common.js";
import { dateTime } from "./format.js";

async function load() {
  const users = await api("/api/users");
  $("#users-table tbody").replaceChildren(...users.map((u) => el("tr", {},
    el("td", {}, u.username), el("td", {}, u.role), el("td", {}, dateTime(u.created_ts)),
    el("td", {}, u.disabled ? "disabled" : u.locked ? "locked (failed logins)" : "active"))));
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
