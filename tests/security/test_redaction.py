"""Hostile passwords through api/redact.py (issue 14, finding 6): none survives, in any form a tool prints.

Pure and small (hypothesis, 200 examples): the end-to-end leak checks are test_secrets_never_leak.py.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from alembic_operator.api import redact

HOSTILE = st.text(
    alphabet=st.sampled_from(list("aZ9@%:/?#&='\" \\;,{}é€ßдパ\t"))
    | st.characters(codec="utf-8", exclude_categories=("Cs",)),
    min_size=3,
    max_size=24,
).filter(lambda pw: pw.strip() and "***" not in pw)


def _conninfo_quoted(pw: str) -> str:
    return "'" + pw.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _leaks(pw: str) -> list[str]:
    """Texts a tool could print with ``pw`` in it: URLs, conninfo, JSON, YAML, libpq-style errors."""
    return [
        f"postgresql://app:{quote(pw, safe='')}@db:5432/shop?sslmode=require",
        f"postgresql://app:{quote_plus(pw)}@db/shop",
        f"host=db user=app password={_conninfo_quoted(pw)} dbname=shop",
        f"could not connect: password={pw}",
        json.dumps({"user": "app", "password": pw}),
        json.dumps({"user": "app", "password": pw}, ensure_ascii=False),
        yaml.safe_dump({"password": pw, "user": "app"}, allow_unicode=True),
        f'FATAL: role "app" with secret {pw} rejected',
    ]


def _forms(pw: str) -> set[str]:
    return {pw, quote(pw, safe=""), quote_plus(pw), json.dumps(pw)[1:-1]} - {""}


@settings(max_examples=200, deadline=None)
@given(HOSTILE)
def test_a_known_hostile_password_appears_in_no_form_after_redaction(pw):
    for text in _leaks(pw):
        out = redact.redact(text, extra=[pw])
        for form in _forms(pw):
            if len(form) >= 3:
                assert form not in out, (text, out)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aZ9@%:é!-_")), min_size=4, max_size=16))
def test_patterns_catch_passwords_nobody_named(pw):
    """Unquoted in a URL, so no spaces here (the known-secret test has them)."""
    texts = [
        f"postgresql://app:{pw}@db/shop",  # an unencoded "@" in the password
        f"dsn: pass%77ord={quote(pw, safe='')} host=db",  # a %-encoded parameter name
        f"host=db password={_conninfo_quoted(pw)}",
        json.dumps({"password": pw}),
        f"password: {pw}\nuser: app",
    ]
    for text in texts:
        out = redact.redact(text)
        assert pw not in out and quote(pw, safe="") not in out, (text, out)


def test_unrelated_text_and_urls_without_passwords_are_left_alone():
    text = 'https://s3.example.com:443/bucket/key?x=1 user "app" host=db: FATAL: password authentication failed'
    assert redact.redact(text) == text
