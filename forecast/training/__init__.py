"""forecast/training."""
