"""Derived names: the S3 location, the database id and label, human sizes."""

from alembic_operator.controller import naming

from .factories import UID, make_spec


def test_the_location_follows_bucket_prefix_namespace_database_run():
    loc = naming.location(spec=make_spec(), namespace="shop", run_name="shop-1-4-2", run_uid=UID)
    db = naming.database_id(make_spec())
    assert loc == f"s3://backups/pg/shop/{db}/shop-1-4-2-{UID[:8]}/"


def test_an_empty_or_slashed_prefix_gives_no_double_slashes():
    for prefix in ("", "/", "/a/b/"):
        loc = naming.location(
            spec=make_spec(backup={"s3": {"prefix": prefix}}), namespace="ns", run_name="r", run_uid=UID
        )
        assert "//" not in loc.removeprefix("s3://")


def test_the_database_id_is_readable_and_distinguishes_secret_and_key():
    a = naming.database_id(make_spec(database={"urlSecretRef": {"name": "a-b", "key": "c"}}))
    b = naming.database_id(make_spec(database={"urlSecretRef": {"name": "a", "key": "b-c"}}))
    assert a.startswith("a-b-c-") and b.startswith("a-b-c-") and a != b


def test_the_database_label_includes_the_namespace():
    spec = make_spec()
    assert naming.database_label(spec, "one") != naming.database_label(spec, "two")
    assert len(naming.database_label(make_spec(database={"urlSecretRef": {"name": "x" * 250}}), "n")) <= 63


def test_human_sizes():
    assert naming.human_size(512) == "512 B"
    assert naming.human_size(12_900_000) == "12.3 MiB"
    assert naming.human_size(3 * 1024**4) == "3.0 TiB"
    assert naming.human_size(None) is None
