"""A decoder bug is rejected with "internal error ... reported", and really reported:
logged with its traceback once per (exception type, decoder), counted on /metrics."""

from __future__ import annotations

import logging

from monitor.ingest import decode_json
from tests.conftest import wait_for
from tests.support.db import count


async def test_a_decoder_bug_is_rejected_logged_once_and_counted(
    make_daemon, publisher, monkeypatch, caplog
):
    def broken(payload):
        raise KeyError("bug")

    monkeypatch.setattr(decode_json, "decode_device", broken)
    d = await make_daemon()
    p = d.cfg.prefix
    with caplog.at_level(logging.ERROR, logger="crswatch.route"):
        for bed in ("b1", "b2", "b3"):
            await publisher(f"{p}/w1/{bed}/device", b"online")
        await wait_for(lambda: count(d.cfg["storage.path"], "rejections") == 3)
    logged = [r for r in caplog.records if "internal error in the device decoder" in r.message]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert (
        d.metrics.registry.get_sample_value(
            "crswatch_internal_errors_total", {"decoder": "device", "exception": "KeyError"}
        )
        == 3
    )
    assert (await d.pipeline.submit(f"{p}/w1/b4/device", b"online")).reason == (
        "internal error while decoding (KeyError); reported"
    )
