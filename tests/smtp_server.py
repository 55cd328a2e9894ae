"""A real SMTP server on loopback (aiosmtpd) that keeps every message it accepts.

Tests tell it to answer chosen recipients with a code (451: try later; 550: no such user),
once or always, and can slow it down so a sender can be killed in the middle of a run.
"""

from __future__ import annotations

import asyncio
import email
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Captured:
    sender: str
    to: str
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)


class _Handler:
    def __init__(self, server: "SmtpServer"):
        self.server = server

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        with self.server.lock:
            self.server.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        with self.server.lock:
            answers = self.server.answers.get(address.lower())
            if answers:
                code = answers[0] if self.server.always.get(address.lower()) else answers.pop(0)
                self.server.refused.append((address, code))
                return f"{code} {'try again later' if code < 500 else 'no such mailbox here'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        if self.server.delay_s:
            await asyncio.sleep(self.server.delay_s)
        with self.server.lock:
            for to in envelope.rcpt_tos:
                self.server.messages.append(Captured(envelope.mail_from, to, bytes(envelope.original_content
                                                                               or envelope.content)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """Listening on 127.0.0.1:`port` until close()."""

    def __init__(self, port: int):
        self.lock = threading.Lock()
        self.messages: list[Captured] = []
        self.answers: dict[str, list[int]] = {}
        self.always: dict[str, bool] = {}
        self.refused: list[tuple[str, int]] = []
        self.connections = 0  # EHLOs seen: one per connection from smtplib
        self.delay_s = 0.0
        # server_hostname: otherwise aiosmtpd asks the resolver for this machine's name.
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=port, server_hostname="mx.test",
                                     ready_timeout=10)
        self.controller.start()
        self.port = port

    def answer(self, address: str, code: int, *, always: bool = False, times: int = 1) -> None:
        """Refuse `address` with `code` at RCPT: the next `times` attempts, or every one."""
        with self.lock:
            self.answers[address.lower()] = [code] * times
            self.always[address.lower()] = always

    def to(self, address: str) -> list[Captured]:
        with self.lock:
            return [m for m in self.messages if m.to.lower() == address.lower()]

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def close(self) -> None:
        self.controller.stop()
