"""The MLLP edge: HL7 v2 over TCP, as central stations and gateways push it (Philips PIC
iX, GE CARESCAPE Gateway, Mindray eGateway), into the same pipeline as the MQTT `hl7` topic.

A frame is 0x0B, the message, 0x1C 0x0D (HL7 v2 MLLP release 1). Each message is routed
as if it had come on `{p}/{ward}/{bed}/hl7`, the ward and bed taken from PV1-3 (point of
care in PV1-3.1, bed in PV1-3.3) or from the configured table, and answered with an HL7
ACK only after the commit that holds it (or its rejection):
- MSA-1 AA: stored (ERR segments of severity W name what was skipped, if anything);
- AE: the content was rejected (MSA-3 and ERR-8 carry the reason, as published on
  `{p}/rejected`);
- AR: the message cannot be taken at all (not ORU^R01, not HL7, too large, no location).
One connection handles one message at a time, in order; connections are independent, so
a slow or dead sender holds only its own connection: a frame must be complete within
FRAME_TIMEOUT_S, an idle connection is closed after `idle_timeout_s`, a frame is bounded
in size, and an ACK that cannot be written within WRITE_TIMEOUT_S closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from monitor.clinical.thresholds import NAME

log = logging.getLogger("crswatch.mllp")

START, END = b"\x0b", b"\x1c\x0d"
FRAME_TIMEOUT_S = 30.0  # a message started must be complete within this
WRITE_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0  # messages waiting for their commit at stop get this long to be ACKed
# HL7 table 0357 (message error condition codes).
ERR_CODES = {
    "unsupported": ("200", "Unsupported message type"),
    "processing": ("202", "Unsupported processing id"),
    "unknown": ("204", "Unknown key identifier"),
    "content": ("102", "Data type error"),
    "internal": ("207", "Application internal error"),
    "warning": ("0", "Message accepted"),
}

Submit = Callable[[str, bytes], Awaitable[Any]]  # (topic, payload) -> the committed Item
Reject = Callable[[str, str, bytes], Awaitable[Any]]  # (topic, reason, payload) -> Item


class MllpServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        prefix: str,
        submit: Submit,
        reject: Reject,
        locations: dict[str, tuple[str, str]] | None = None,
        max_bytes: int = 262144,
        idle_timeout_s: float = 900.0,
        max_connections: int = 64,
        clock: Callable[[], float] | None = None,
    ):
        self.host, self.port, self.prefix = host, port, prefix
        self.submit, self.reject = submit, reject
        self.locations = locations or {}
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self.clock = clock or (lambda: datetime.now(UTC).timestamp())
        self.server: asyncio.Server | None = None
        self.connections: dict[asyncio.Task, bool] = {}  # handler -> busy (awaiting commit)
        self.ids = itertools.count(1)
        self.acked = 0  # messages answered (any code)
        self._closing: asyncio.Future | None = None

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0)."""
        self.server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=self.max_bytes + 64
        )
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("MLLP on %s:%s", self.host, self.port)
        return self.port

    async def run(self, stop: asyncio.Event) -> None:
        """The daemon's task: serve until stop, then close."""
        await stop.wait()
        await self.close()

    async def close(self) -> None:
        """Stop listening; a message waiting for its commit gets STOP_GRACE_S to be ACKed
        (unACKed, the sender sends it again: storing it twice is a duplicate). Any caller
        waits for the one closing (the daemon's stop() and this task's end both call it)."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self.server is None:
            return
        self.server.close()
        server, self.server = self.server, None
        idle = [t for t, busy in self.connections.items() if not busy]
        for task in idle:
            task.cancel()
        busy = [t for t, b in self.connections.items() if b]
        if busy:
            await asyncio.wait(busy, timeout=STOP_GRACE_S)
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)

    # -- one connection ----------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername") or ("?", 0)
        where = f"mllp://{peer[0]}:{peer[1]}"
        if len(self.connections) >= self.max_connections or self.server is None:
            log.warning("MLLP: %s refused (%d connections open)", where, len(self.connections))
            writer.close()
            return
        self.connections[task] = False
        try:
            while True:
                frame = await self._read_frame(reader, writer, where)
                if frame is None:
                    break
                self.connections[task] = True
                ack = await self._answer(frame, where)
                writer.write(START + ack + END)
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
                self.acked += 1
                self.connections[task] = False
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as e:
            log.info("MLLP: %s closed (%s)", where, type(e).__name__)
        finally:
            self.connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _read_frame(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: str
    ) -> bytes | None:
        """The next message, or None when the peer closed or idled out."""
        while True:  # bytes before a start block (keep-alive CR/LF, noise) are skipped
            try:
                first = await asyncio.wait_for(reader.read(1), self.idle_timeout_s)
            except TimeoutError:
                return None
            if not first:
                return None
            if first == START:
                break
        try:
            data = await asyncio.wait_for(reader.readuntil(END), FRAME_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            reason = f"MLLP frame over the limit of {self.max_bytes} bytes; connection closed"
            await self.reject(where, reason, b"")
            writer.write(START + self._ack(b"", "AR", reason, "content") + END)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)
            raise ConnectionError(reason) from None
        return data[: -len(END)]

    async def _answer(self, message: bytes, where: str) -> bytes:
        try:
            header = parse_header(message)
        except ValueError as e:
            await self.reject(where, str(e), message)
            return self._ack(message, "AR", str(e), "unsupported")
        if header["type"][:2] != ["ORU", "R01"]:
            reason = f"MSH-9 {'^'.join(header['type'])[:20]!r}: CRSWatch takes ORU^R01 only"
            await self.reject(where, reason, message)
            return self._ack(message, "AR", reason, "unsupported")
        place = self._place(header)
        if isinstance(place, str):
            await self.reject(where, place, message)
            return self._ack(message, "AR", place, "unknown")
        ward, bed = place
        item = await self.submit(f"{self.prefix}/{ward}/{bed}/hl7", message)
        if item.kind == "reject":
            kind = "unknown" if "admitted" in item.reason else "content"
            if item.reason.startswith("MSH-11"):
                kind = "processing"
            elif item.reason.startswith("internal error"):
                kind = "internal"
            return self._ack(message, "AE", item.reason, kind)
        return self._ack(message, "AA", "", "warning", warnings=item.extra.get("skipped", []))

    def _place(self, header: dict) -> tuple[str, str] | str:
        """(ward, bed) of the message, or why there is none."""
        poc, bed = header["poc"], header["bed"]
        if f"{poc}/{bed}" in self.locations:
            return self.locations[f"{poc}/{bed}"]
        if not poc or not bed:
            return (
                "PV1-3: no point of care (PV1-3.1) and bed (PV1-3.3) to place the message; "
                "send PV1-3 or list the location in mllp.locations"
            )
        if not (NAME.match(poc) and NAME.match(bed)):
            return (
                f"PV1-3 {poc[:32]!r}/{bed[:32]!r}: ward and bed must be 1-32 of A-Z a-z 0-9 _ -;"
                " map the location in mllp.locations"
            )
        return poc, bed

    def _ack(
        self,
        message: bytes,
        code: str,
        reason: str,
        kind: str,
        warnings: list[str] | tuple = (),
    ) -> bytes:
        try:
            h = parse_header(message)
        except ValueError:
            h = {"app": "", "facility": "", "id": "", "version": "2.6", "processing": "P"}
        now = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%d%H%M%S+0000")
        segments = [
            f"MSH|^~\\&|CRSWATCH|CRSWATCH|{h['app']}|{h['facility']}|{now}||ACK^R01^ACK"
            f"|CRSW{next(self.ids)}|{h['processing'] or 'P'}|{h['version'] or '2.6'}",
            f"MSA|{code}|{h['id']}" + (f"|{escape(reason)[:200]}" if reason else ""),
        ]
        if reason:
            number, text = ERR_CODES[kind]
            segments.append(f"ERR|||{number}^{text}^HL70357|E||||{escape(reason)}")
        for warning in warnings:
            number, text = ERR_CODES["warning"]
            segments.append(f"ERR|||{number}^{text}^HL70357|W||||{escape(warning)}")
        return ("\r".join(segments) + "\r").encode("utf-8")


def parse_header(message: bytes) -> dict:
    """What the ACK and the routing need of MSH and PV1; ValueError if it is not HL7 v2."""
    text = message.decode("utf-8", "replace")
    segments = [s for s in re.split(r"\r\n|\r|\n", text) if s.strip()]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        raise ValueError("not an HL7 v2 message: the first segment is not MSH")
    field, component = segments[0][3], segments[0][4]
    msh = ["", *segments[0].split(field)]  # msh[n] is MSH-n
    get = lambda fields, n: fields[n] if n < len(fields) else ""  # noqa: E731
    pv1: list[str] = []
    for segment in segments[1:]:
        if segment.startswith("PV1" + field):
            pv1 = segment.split(field)
            break
    location = get(pv1, 3).split(component) + ["", "", ""]
    return {
        "app": _clean(get(msh, 3).split(component)[0]),
        "facility": _clean(get(msh, 4).split(component)[0]),
        "id": _clean(get(msh, 10)),
        "processing": _clean(get(msh, 11).split(component)[0]),
        "version": _clean(get(msh, 12).split(component)[0]),
        "type": [p.strip().upper() for p in get(msh, 9).split(component)],
        "poc": location[0].strip(),
        "bed": location[2].strip(),
    }


def _clean(value: str) -> str:
    """A value copied into our ACK: no separators, bounded."""
    return re.sub(r"[|^~\\&\r\n]", "", value)[:64]


def escape(text: str) -> str:
    """HL7 v2 escape sequences for the default separators; no line breaks."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    out = out.replace("&", "\\T\\").replace("~", "\\R\\")
    return out.replace("\r", " ").replace("\n", " ")
