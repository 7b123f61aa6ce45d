"""Hostile database passwords, shared by the step-level and the end-to-end leak tests (issue 14, finding 6).

One hypothesis strategy (:data:`PASSWORDS`), the URL forms a password may take, the role that
owns a fresh database with it, and every spelling a tool or serializer could print it in
(:func:`forms`), so both tests search for the same things. Must not: weaken a password to make
a test pass (each is hostile by construction).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

from hypothesis import strategies as st

from testbed import postgres as tb_postgres

HOSTILE_CHARS = "@%'\"\\&=?#/: "
#: Spellings of the password parameter a URL may use (libpq decodes the name too).
PASSWORD_PARAMETERS = ("password=", "%70assword=", "passwor%64=")

PASSWORDS = (
    st.lists(
        st.sampled_from([*HOSTILE_CHARS, *PASSWORD_PARAMETERS, "%41", "é", "✓", "パ", "д", "€"])
        | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=3),
        min_size=4,
        max_size=10,
    )
    .map("".join)
    # long enough that no form of it turns up in a run's output by chance; hostile by construction
    .filter(lambda pw: len(pw) >= 8 and any(c in HOSTILE_CHARS for c in pw) and any(ord(c) > 127 for c in pw))
)
#: (URL form of the succeeding steps, URL form of the failing ones): each example covers both.
URL_FORMS = st.sampled_from([("userinfo", "query"), ("query", "userinfo")])


def seed_from_env(variable: str) -> int:
    """``$variable`` (to replay a run), else a fresh seed; the test prints it with what it drew."""
    return int(os.environ.get(variable) or secrets.randbits(32))


def url(server: tb_postgres.PostgresServer, role: str, password: str, database: str, form: str, param: str) -> str:
    """A URL with ``password`` in the user part (``userinfo``) or as a ``?password=`` parameter spelled ``param``."""
    base = f"{server.host}:{server.port}/{database}"
    if form == "userinfo":
        return f"postgresql://{role}:{quote(password, safe='')}@{base}"
    return f"postgresql://{role}@{base}?{param}{quote(password, safe='')}"


def forms(password: str) -> set[str]:
    """Every way a tool or a serializer could print ``password``."""
    return {
        password,
        quote(password, safe=""),
        quote(password),
        quote_plus(password),
        json.dumps(password)[1:-1],
        json.dumps(password, ensure_ascii=False)[1:-1],
        password.replace("'", "''"),
        password.replace("\\", "\\\\").replace("'", "\\'"),
    }


@contextlib.contextmanager
def owner(server: tb_postgres.PostgresServer, password: str) -> Iterator[tuple[str, str]]:
    """A superuser role with ``password`` owning a fresh database; both dropped afterwards."""
    role = f"hostile_{secrets.token_hex(4)}"
    server.create_role(role, password, superuser=True)
    database = server.create_database(owner=role)
    try:
        yield role, database
    finally:
        server.drop_database(database)
        server.drop_role(role)
