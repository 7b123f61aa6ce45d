"""Remove secrets from text before it reaches a log, an Event, status or a message.

Safety rule 6: passwords never appear anywhere. Every message a step
produces passes through :func:`redact`, which also knows the secrets the
process was given (the database password, the S3 secret key).
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_PASSWORD_KV = re.compile(r"(?P<key>password\s*=\s*)(?P<pw>'[^']*'|\S+)", re.I)

#: Environment variables whose values are secrets wherever they appear.
SECRET_ENV = ("DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "AWS_SESSION_TOKEN")


def known_secrets() -> list[str]:
    """Secrets this process knows of: env values and the password inside DATABASE_URL."""
    secrets: list[str] = []
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if not value:
            continue
        if name == "DATABASE_URL":
            try:
                pw = urlsplit(value).password
            except ValueError:
                pw = None
            if pw:
                secrets.append(pw)
        else:
            secrets.append(value)
    return [s for s in secrets if len(s) >= 3]


def redact(text: str, extra: list[str] | None = None) -> str:
    """Return ``text`` with URL passwords, ``password=`` values and known secrets masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _PASSWORD_KV.sub(lambda m: f"{m['key']}***", text)
    for secret in known_secrets() + (extra or []):
        text = text.replace(secret, "***")
    return text
