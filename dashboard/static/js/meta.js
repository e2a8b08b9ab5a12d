// The clinical thresholds and vocabularies the pages show, from the server's one
// declaration (monitor/clinical/thresholds.py, served as /api/meta): never a copy here.
// null when it cannot be read (the pages then draw no threshold lines), and on the login
// page (no one is logged in yet: /api/meta would answer 401).
export const META = document.body.dataset.user
  ? await fetch("/api/meta", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null)
  : null;
