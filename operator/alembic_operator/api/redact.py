"""Remove secrets from text before it reaches a log, an Event, status or a message.

Safety rule 6: passwords never appear anywhere. Every message a step
produces passes through :func:`redact`, in two passes (issue 14, finding 6):

1. known secrets — the values the process was given (the database password,
   the S3 secret key; :func:`known_secrets`) plus ``extra`` — in every form a
   tool may print them: raw, URL-decoded, URL-encoded (``quote``, ``quote_plus``),
   JSON-escaped and SQL/conninfo-quoted;
2. patterns, for secrets nobody told us about: a URL's password (up to the
   last ``@``, so an unencoded ``@`` in it is covered), ``password=`` values
   (the key possibly ``%``-encoded, the value quoted or not) and
   ``password:`` keys of JSON and YAML.

Must not: log, raise on any input, or import anything of ours (api/ imports nothing).
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "***"

#: scheme://user:password@ — greedy to the last "@" of the token, so "p@ss" is masked whole.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>\S*)@", re.I)
#: key=value; the key is checked after URL-decoding (pass%77ord=...), the value may be quoted.
_KEY_VALUE = re.compile(
    r"(?P<key>[A-Za-z0-9_%]+)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,]+)"
)
#: "password": "...", password: ... (JSON, YAML, Python reprs); an unquoted value runs to the line's end.
_KEY_COLON = re.compile(
    r"(?P<key>[\"']?[A-Za-z0-9_-]*(?:password|passwd|pwd|secret_?access_?key)[\"']?\s*:\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.|'')*'|[^\s,}\]][^\n,}\]]*)",
    re.I,
)
#: Names whose values are secrets (compared lower-case, after URL-decoding).
SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "pass", "sslpassword", "secret_access_key", "aws_secret_access_key", "secretkey"}
)

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
                secrets.append(unquote(pw))
        else:
            secrets.append(value)
    return [s for s in secrets if len(s) >= 3]


def forms(secret: str) -> set[str]:
    """The ways a tool may print ``secret``: raw, URL-decoded and -encoded, JSON-escaped, quoted."""
    found = {secret, unquote(secret), quote(secret, safe=""), quote(secret), quote_plus(secret)}
    found.add(json.dumps(secret)[1:-1])
    found.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    found.add(secret.replace("'", "''"))
    found.add(secret.replace("\\", "\\\\").replace("'", "\\'"))
    return {f for f in found if len(f) >= 3}


def _secret_key(key: str) -> bool:
    name = unquote(key).strip("\"'").lower().replace("-", "_")
    return name in SECRET_KEYS or name.endswith("password")


def redact(text: str, extra: list[str] | None = None) -> str:
    """Return ``text`` with known secrets (every form) masked, then URL passwords and password keys."""
    every = set()
    for secret in known_secrets() + [s for s in extra or [] if len(s) >= 3]:
        every |= forms(secret)
    for form in sorted(every, key=len, reverse=True):  # longest first: a form may contain another
        text = text.replace(form, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['eq']}{MASK}" if _secret_key(m["key"]) else m[0], text)
    return _KEY_COLON.sub(lambda m: f"{m['key']}{MASK}", text)
