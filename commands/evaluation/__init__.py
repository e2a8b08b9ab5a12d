"""Scoring a replay against the simulator's truth: detection, burden, forecast, the report."""
