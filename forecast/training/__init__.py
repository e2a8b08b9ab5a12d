"""Off-line forecast work: simulated cohorts, training the shipped model, evaluating it.
The only forecast code that may import the simulator and the daemon."""
