"""What leaves the daemon, apart from rows: alerts (through alerts/), the dashboard's live
hub, webhooks."""
