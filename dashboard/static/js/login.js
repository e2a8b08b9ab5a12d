// The login form: JSON to /api/login with the form's CSRF token, then on to `next`.

import { $, csrf } from "./common.js";

const form = $("#login-form");
const error = $("#login-error");

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const resp = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ username: $("#username").value.trim(), password: $("#password").value }),
    });
    if (resp.ok) {
      location.assign(form.dataset.next || "/");
      return;
    }
    let message = `Login failed (HTTP ${resp.status})`;
    try { message = (await resp.json()).error.message; } catch { /* keep the status */ }
    error.textContent = message;
    error.hidden = false;
    $("#password").select();
  } catch {
    error.textContent = "The server cannot be reached.";
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});
