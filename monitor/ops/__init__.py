"""monitor/ops."""
