"""Ingest: topic + bytes -> a routed item, or a rejection with its reason (no store,
no clinical state)."""
