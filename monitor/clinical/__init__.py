"""The clinical rules, pure: a snapshot in, grades with reasons out; no I/O, no clock.
Imports nothing else of the daemon (an import contract checks it)."""
