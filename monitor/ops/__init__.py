"""Running the process: /healthz and /metrics, the GC policy, the embedded broker."""
