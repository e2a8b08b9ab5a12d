"""Clinical state: one admission's streams -> an assessment -> the published bed state."""
