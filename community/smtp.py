"""One connection at a time to the configured SMTP server: STARTTLS or TLS, AUTH, and the
server's answer to each message sorted into sent, deferred (4xx) or failed (5xx).
community/mailer.py decides what to do with each answer."""

from __future__ import annotations

import smtplib
import ssl

from aggregator.errors import HustingsError
from aggregator.settings import Settings

from . import mail_text
from .addresses import domain_of
from .mail_compose import Composed


class SmtpDown(HustingsError):
    """The server could not be reached, or dropped the connection: try again later."""


class Smtp:
    """One connection at a time to the configured server, opened when the first message needs it."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.client: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        # Our own name for EHLO: smtplib would ask DNS for this machine's (getfqdn).
        helo = domain_of(mail_text.sender(s)[1])
        context = ssl.create_default_context() if s.smtp_security != "none" else None  # 20 ms each: only if used
        try:
            if s.smtp_security == "tls":
                client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, local_hostname=helo, timeout=s.smtp_timeout_s,
                                          context=context)
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, local_hostname=helo, timeout=s.smtp_timeout_s)
            client.ehlo()
            if s.smtp_security == "starttls":
                if not client.has_extn("starttls"):
                    client.close()
                    raise SmtpDown(f"{s.smtp_host}:{s.smtp_port} does not offer STARTTLS (smtp_security=starttls)")
                client.starttls(context=context)
                client.ehlo()
            if s.smtp_user:
                client.login(s.smtp_user, s.smtp_password)
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpDown(f"cannot send through {s.smtp_host}:{s.smtp_port}: {exc}") from None
        return client

    def send(self, message: Composed) -> tuple[str, int, str]:
        """("sent" | "deferred" | "failed", the server's code, its words). Raises SmtpDown."""
        if self.client is None:
            self.client = self._open()
        try:
            self.client.sendmail(message.sender, [message.to], message.data)
            return "sent", 250, ""
        except smtplib.SMTPRecipientsRefused as exc:
            code, words = exc.recipients.get(message.to, (451, b"refused"))
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            code, words = exc.smtp_code, exc.smtp_error
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SmtpDown(f"the connection to {self.settings.smtp_host} failed while sending: {exc}") from None
        text = f"{code} {words.decode('utf-8', 'replace') if isinstance(words, bytes) else words}"[:500]
        if code == 421:  # the server is closing the connection: this one and the rest wait
            self.close()
            raise SmtpDown(text)
        return ("deferred" if 400 <= code < 500 else "failed"), code, text

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None
