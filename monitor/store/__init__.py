"""monitor/store."""
