"""The embedded MQTT broker (amqtt), for the demo and for tests where Mosquitto is absent.

amqtt speaks MQTT 3.1.1 and keeps sessions in memory: fine for a demo, not for a ward.
Production runs against a real broker (Mosquitto, EMQX).
"""

from __future__ import annotations

import logging

from amqtt.broker import Broker


def broker_config(host: str, port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def start_broker(host: str, port: int) -> Broker:
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    broker = Broker(broker_config(host, port))
    await broker.start()
    return broker
