"""The ward dashboard: login, ward overview, patient view, live updates (aiohttp)."""
