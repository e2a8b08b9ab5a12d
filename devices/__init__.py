"""The bedside-device side of CRSWatch: the payloads monitors and gateways publish."""
