"""monitor/state."""
