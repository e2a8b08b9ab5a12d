"""Mounts the dashboard and its API on the daemon's aiohttp application."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application, daemon) -> None:
    """Add the dashboard's routes to `app` (called by Daemon.start)."""
