"""Email notifier (``kind: email``): one message per notification over SMTP (stdlib
:mod:`smtplib`), plain text with an HTML alternative, subject = the headline (level, what
happened, where, the alert's message), in Chinese or English.

``smtp_security``: ``starttls`` (default, port 587), ``ssl`` (implicit TLS, port 465) or
``none`` (port 25; a relay on the same host or network). ``username`` with
``password_env``/``password_file`` logs in. The connection is kept between messages and
opened again when the server dropped it.

Errors: a refused login, sender or every recipient (5xx) is given up — the same message
would be refused again; 4xx answers, timeouts and connection errors are retried.

>>> from riskwatch.alerts.notifiers.message import Renderer
>>> n = EmailNotifier("mail", "127.0.0.1", 25, "none", None, None, "rw@example.com",
...                   ("ops@example.com",), Renderer("en", "UTC"))
>>> from riskwatch.alerts.store import Delivery
>>> p = b'{"id":"a1","rule":"ch4","level":"red","action":"firing","state":"firing",' \\
...     b'"enterprise":"m1","site":"f1","sensor":"S1","ts":0,"message":"CH4 high"}'
>>> m = n.message(Delivery("a1:1:mail", "a1", "mail", p, "m1", "f1", 0))
>>> m["Subject"], m["To"], m.get_content_type()
('[RED] raised m1/f1/S1: CH4 high', 'ops@example.com', 'multipart/alternative')
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from riskwatch.alerts.notifiers.message import Renderer, notices
from riskwatch.alerts.store import Delivery
from riskwatch.errors import NotifyError

__all__ = ["EmailNotifier"]

Security = Literal["none", "starttls", "ssl"]
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


class EmailNotifier:
    def __init__(
        self, name: str, host: str, port: int, security: Security, username: str | None,
        password: str | None, from_addr: str, to: tuple[str, ...], renderer: Renderer, *,
        timeout_s: float = 10.0,
    ) -> None:  # fmt: skip
        self.name = name
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.security = security
        self.username = username
        self.password = password
        self.from_addr = from_addr
        self.to = tuple(to)
        self.renderer = renderer
        self.timeout_s = timeout_s
        self._smtp: smtplib.SMTP | None = None

    def message(self, d: Delivery) -> EmailMessage:
        ns = notices(d.payload)
        m = EmailMessage()
        m["Subject"] = self.renderer.title(ns)
        m["From"] = self.from_addr
        m["To"] = ", ".join(self.to)
        m["Date"] = formatdate(localtime=False)
        m["Message-ID"] = make_msgid(domain=self.from_addr.rpartition("@")[2] or None)
        m["X-Riskwatch-Delivery"] = d.id  # receivers (and filters) drop repeats by it
        m.set_content(self.renderer.text(ns))
        m.add_alternative(self.renderer.html(ns), subtype="html")
        return m

    def _connect(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            if self.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if self.username:
            smtp.login(self.username, self.password or "")
        self._smtp = smtp
        return smtp

    def send(self, d: Delivery) -> None:
        msg = self.message(d)
        where = f"smtp {self.host}:{self.port}"
        for attempt in (1, 2):  # a kept connection the server closed: open it once more
            try:
                refused = self._connect().send_message(msg, self.from_addr, list(self.to))
            except smtplib.SMTPServerDisconnected as exc:
                self._drop()
                if attempt == 2:
                    raise NotifyError(f"{where}: disconnected: {exc}", retryable=True) from exc
                continue
            except smtplib.SMTPAuthenticationError as exc:
                self._drop()
                raise NotifyError(f"{where}: login refused: {exc.smtp_code}",
                                  retryable=False) from exc  # fmt: skip
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [c for c, _ in exc.recipients.values()]
                raise NotifyError(
                    f"{where}: every recipient refused: {codes}",
                    retryable=all(400 <= c < 500 for c in codes),
                ) from exc
            except smtplib.SMTPResponseException as exc:
                self._drop()
                raise NotifyError(f"{where}: {exc.smtp_code} {exc.smtp_error!r}",
                                  retryable=exc.smtp_code < 500) from exc  # fmt: skip
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                raise NotifyError(f"{where}: {type(exc).__name__}: {exc}",
                                  retryable=True) from exc  # fmt: skip
            if refused:  # some recipients refused: the others have it; say so, do not resend
                raise NotifyError(f"{where}: recipients refused: {sorted(refused)}",
                                  retryable=False)  # fmt: skip
            return

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self._drop()
