"""Pure helpers of the restore-integrity work (issue 13): scope, renames, COPY headers, row multisets."""

from __future__ import annotations

import hashlib

from alembic_operator.job.checks import rowcounts
from alembic_operator.job.database import loading, row_digests, scope


def test_a_scope_becomes_exact_pg_dump_patterns() -> None:
    assert scope.dump_args(scope=[], extensions=["hstore"]) == []
    assert scope.dump_args(scope=['we.ird "q" *'], extensions=["hstore"]) == [
        '--schema="we.ird ""q"" *"',
        '--extension="hstore"',
    ]


def test_a_scoped_restore_drops_the_scope_and_the_schemas_created_since() -> None:
    doc = {"scope": ["shop"], "schemas": ["billing", "public", "shop"]}
    assert scope.to_drop(doc=doc, current=["billing", "public", "shop", "new"]) == ["new", "shop"]
    assert scope.to_drop(doc={"schemas": ["public"]}, current=["public"]) is None  # whole database
    assert scope.holds("shop.t", ["shop"]) and not scope.holds("billing.t", ["shop"]) and scope.holds("x.t", None)


def test_the_scoped_preamble_drops_by_name_on_the_server_and_clears_nothing_else() -> None:
    sql = loading.preamble_full(server_major=15, scope={"scope": ["shop"], "recorded": ["shop", "billing"]})
    assert "alembic_operator_drop_scope" in sql and "lo_unlink" not in sql and "clear_database_objects" not in sql
    assert "shop" not in sql  # names travel hex-encoded, never as SQL text


def test_renames_are_found_by_oid_and_a_recreated_table_is_not_one() -> None:
    before = {"audit.comment": 10, "public.task": 11, "public.gone": 12}
    now = {10: "public.remark", 99: "public.task"}
    assert rowcounts.renames(before=before, now=now) == {"audit.comment": "public.remark"}


def test_copy_headers_give_the_columns_whatever_their_names() -> None:
    header = 'COPY "we.ird"."T (x)" (id, "col umn", "a ""q"" b", "$$") FROM stdin;'
    assert row_digests.copy_columns(header) == ["id", "col umn", 'a "q" b', "$$"]


def test_missing_counts_backup_rows_not_found_now_as_a_multiset() -> None:
    def h(*rows: bytes) -> list[bytes]:
        return sorted(hashlib.sha256(r).digest() for r in rows)

    assert row_digests.missing(backup=h(b"a", b"b", b"b"), now=h(b"b", b"a", b"c")) == 1  # one "b" changed
    assert row_digests.missing(backup=h(b"a"), now=h(b"a", b"new")) == 0  # added rows are fine
