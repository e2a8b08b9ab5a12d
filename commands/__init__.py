"""The command line's compositions: the only runtime code that wires several top-level
packages together (the daemon with the dashboard, the simulator with the daemon)."""
