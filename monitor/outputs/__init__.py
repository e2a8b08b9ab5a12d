"""monitor/outputs."""
