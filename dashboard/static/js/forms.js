// The patient page's forms: care events, neuro assessments (ICE), grade overrides.
// Every one goes through api() (CSRF header) and shows the server's reason on refusal.

import { $, $$, api, notify } from "./common.js";
import { doseUnit, fromWardTime } from "./format.js";

function tsFrom(input) {
  if (!input.value) return undefined; // the server uses "now"
  const ms = fromWardTime(input.value); // typed in the ward's time, as the page shows it
  return ms === null ? undefined : new Date(ms).toISOString();
}

function number(fieldset, name) {
  const input = fieldset.querySelector(`[name="${name}"]`);
  if (!input || input.value === "") return undefined;
  return Number(input.value);
}

function showError(form, message) {
  const box = form.querySelector(".form-error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function submit(form, path, payload, done) {
  const button = form.querySelector('button[type="submit"]');
  showError(form, "");
  button.disabled = true;
  try {
    await api(path, { method: "POST", body: payload });
    done();
  } catch (e) {
    showError(form, e.message);
  } finally {
    button.disabled = false;
  }
}

function clean(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

export function careForm(target, onStored) {
  const form = $("#care-form");
  const type = $("#care-type");
  const sync = () => {
    for (const fs of $$("fieldset[data-for]", form)) {
      const on = fs.dataset.for === type.value;
      fs.hidden = !on;
      fs.disabled = !on;
    }
  };
  type.addEventListener("change", sync);
  sync();
  // the dose fields say the unit of the chosen drug (the payload carries the number only)
  for (const [drugId, labelFor] of [["#med-drug", "med-dose"], ["#vp-drug", "vp-dose"]]) {
    const drug = $(drugId);
    const label = form.querySelector(`label[for="${labelFor}"]`);
    const optional = labelFor === "med-dose" ? ", optional" : "";
    const showUnit = () => {
      const unit = doseUnit(drug.value);
      label.textContent = `Dose (${unit || "unit not known"}${optional})`;
    };
    drug.addEventListener("change", showUnit);
    showUnit();
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = type.value;
    const fs = form.querySelector(`fieldset[data-for="${t}"]`);
    const val = (name) => fs.querySelector(`[name="${name}"]`).value;
    let payload = { type: t, ts: tsFrom($("#care-ts")) };
    if (t === "oxygen") {
      payload = { ...payload, device: val("device"), flow_lpm: number(fs, "flow_lpm"),
        fio2: number(fs, "fio2") };
    } else if (t === "vasopressor") {
      payload = { ...payload, drug: val("drug"), action: val("action"), dose: number(fs, "dose") };
    } else {
      payload = { ...payload, drug: val("drug"), dose: number(fs, "dose") };
    }
    submit(form, target(), clean(payload), () => {
      const dose = payload.dose !== undefined ? ` ${payload.dose} ${doseUnit(payload.drug) || ""}` : "";
      notify(`Care event recorded: ${t} ${payload.device || payload.drug || ""}${dose.trimEnd()}.`);
      $("#care-ts").value = "";
      onStored();
    });
  });
}

export function neuroForm(target, onStored) {
  const form = $("#neuro-form");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const pick = (name) => {
      const v = form.querySelector(`[name="${name}"]`).value;
      if (v === "") return undefined;
      if (v === "true") return true;
      if (v === "false") return false;
      return v;
    };
    const ice = $("#ice-score").value;
    const edema = pick("cerebral_edema");
    const payload = clean({
      type: "neuro", ts: tsFrom($("#neuro-ts")),
      ice_score: ice === "" ? undefined : Number(ice),
      acvpu: pick("acvpu"), seizure: pick("seizure"), motor_weakness: pick("motor_weakness"),
    });
    if (edema !== undefined) payload.cerebral_edema = edema === "none" ? null : edema;
    if (Object.keys(payload).filter((k) => k !== "type" && k !== "ts").length === 0) {
      showError(form, "Enter an ICE score or at least one finding.");
      return;
    }
    submit(form, target(), payload, () => {
      notify("Neuro assessment recorded.");
      form.reset();
      onStored();
    });
  });
}

export function overrideForm(patientId, onStored) {
  const panel = $("#override-panel");
  panel.hidden = false;
  const form = $("#override-form");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const payload = {
      scale: $("#ov-scale").value, grade: Number($("#ov-grade").value),
      reason: $("#ov-reason").value.trim(),
    };
    if (!payload.reason) {
      showError(form, "A reason is required.");
      return;
    }
    submit(form, `/api/patients/${encodeURIComponent(patientId)}/override`, payload, () => {
      notify(`${payload.scale.toUpperCase()} grade ${payload.grade} saved.`);
      form.reset();
      onStored();
    });
  });
}

export function disableForms(message) {
  for (const form of [$("#care-form"), $("#neuro-form")]) {
    for (const c of form.elements) c.disabled = true;
    showError(form, message);
  }
}
