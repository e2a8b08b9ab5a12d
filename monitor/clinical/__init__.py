"""monitor/clinical."""
