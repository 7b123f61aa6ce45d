"""Parsing the run folder URI: s3://BUCKET/PREFIX/.../RUN/."""

from __future__ import annotations

import pytest

from alembic_operator.api import errors, location


def test_a_run_folder_gives_keys_inside_it() -> None:
    loc = location.Location.parse("s3://backups/shop/prod/run-7/")
    assert (loc.bucket, loc.prefix, loc.run) == ("backups", "shop/prod/run-7/", "run-7")
    assert loc.key("manifest.json") == "shop/prod/run-7/manifest.json"
    assert loc.uri("dump.pgdump") == "s3://backups/shop/prod/run-7/dump.pgdump"


def test_the_trailing_slash_and_duplicate_slashes_are_optional() -> None:
    assert location.Location.parse("s3://b-1/a//b/run").prefix == "a/b/run/"
    assert location.Location.parse("  s3://b-1/run  ").prefix == "run/"


def test_the_retention_scope_is_the_parent_folder() -> None:
    assert location.Location.parse("s3://bkt/shop/prod/run-7/").parent_prefix == "shop/prod/"
    assert location.Location.parse("s3://bkt/run-7/").parent_prefix == ""


def test_a_sibling_is_a_location_in_the_same_bucket() -> None:
    sib = location.Location.parse("s3://bkt/shop/run-7/").sibling("shop/run-3")
    assert sib == location.Location(bucket="bkt", prefix="shop/run-3/")


@pytest.mark.parametrize(
    "uri, words",
    [
        (None, "no backup location"),
        ("", "no backup location"),
        ("gs://bucket/run/", "must be an s3:// URI"),
        ("/tmp/backups/run", "must be an s3:// URI"),
        ("s3://", "invalid bucket name"),
        ("s3://Upper/run/", "invalid bucket name"),
        ("s3://ab/run/", "invalid bucket name"),
        ("s3://bucket", "names no run folder"),
        ("s3://bucket/", "names no run folder"),
        ("s3://bucket/a/../b/", "'..'"),
    ],
)
def test_bad_locations_are_invalid_input_naming_the_problem(uri: str | None, words: str) -> None:
    with pytest.raises(errors.InvalidInput) as err:
        location.Location.parse(uri)
    assert words in err.value.message
    assert "\n" not in err.value.message


def test_dump_names_follow_the_format() -> None:
    assert location.dump_name("custom") == "dump.pgdump"
    assert location.dump_name("directory") == "dump.tar"
    with pytest.raises(errors.InvalidInput):
        location.dump_name("tar")
