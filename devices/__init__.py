"""The bedside-device side of CRSWatch: the payloads monitors and gateways publish
(encode.py) and the ward simulator (`python main.py simulate`, devices/README.md):
physiology.py, staff.py, artefacts.py and truth.py are pure and seeded; bed.py turns one
patient into an ordered message stream; ward.py merges the beds and publishes them on a
simulated clock (clock.py) through one MQTT client per bed (link.py); cli.py is the command."""
