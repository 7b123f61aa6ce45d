"""Multipart part sizing and S3 settings from the environment."""

from __future__ import annotations

import pytest

from alembic_operator.api import errors
from alembic_operator.job.storage import parts, s3

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.mark.parametrize("db_bytes", [0, 1, 10 * MiB, 8 * GiB, 45 * GiB])
def test_small_databases_use_the_minimum_8_mib(db_bytes: int) -> None:
    assert parts.part_size(database_bytes=db_bytes) == 8 * MiB


@pytest.mark.parametrize("db_bytes", [60 * GiB, 78 * GiB, 100 * GiB, 1024 * GiB, 10 * 1024 * GiB])
def test_large_databases_fit_in_10000_parts_with_room_to_spare(db_bytes: int) -> None:
    size = parts.part_size(database_bytes=db_bytes)
    assert size % MiB == 0 and size >= 8 * MiB
    assert db_bytes * 1.5 / size <= 9000
    assert db_bytes * 1.6 / size < 10_000  # a dump somewhat bigger than planned still fits


def test_part_size_never_exceeds_s3s_5_gib_limit() -> None:
    assert parts.part_size(database_bytes=100 * 1024 * GiB) == 5 * GiB


def test_part_size_grows_monotonically() -> None:
    sizes = [parts.part_size(database_bytes=n * GiB) for n in range(0, 2000, 7)]
    assert sizes == sorted(sizes)


def test_settings_default_to_aws_in_us_east_1() -> None:
    settings = s3.settings_from_env({})
    assert settings == s3.Settings(endpoint=None, region="us-east-1", force_path_style=False, sse=None)


def test_settings_read_endpoint_region_path_style_and_sse() -> None:
    settings = s3.settings_from_env(
        {
            "S3_ENDPOINT": "http://127.0.0.1:9000",
            "S3_REGION": "eu-west-1",
            "S3_FORCE_PATH_STYLE": "TRUE",
            "S3_SSE": "AES256",
        }
    )
    assert (settings.endpoint, settings.region, settings.force_path_style, settings.sse) == (
        "http://127.0.0.1:9000",
        "eu-west-1",
        True,
        "AES256",
    )


@pytest.mark.parametrize(
    "env, words",
    [
        ({"S3_ENDPOINT": "127.0.0.1:9000"}, "must start with http"),
        ({"S3_FORCE_PATH_STYLE": "maybe"}, "must be true or false"),
    ],
)
def test_bad_settings_are_invalid_input(env: dict[str, str], words: str) -> None:
    with pytest.raises(errors.InvalidInput) as err:
        s3.settings_from_env(env)
    assert words in err.value.message


def test_the_client_fails_fast_and_skips_optional_checksums() -> None:
    client = s3.client(settings=s3.Settings(endpoint="http://127.0.0.1:1"))
    config = client.meta.config
    assert config.connect_timeout <= 5 and config.retries["total_max_attempts"] <= 3
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"


def test_memory_stays_at_a_few_parts_whatever_the_part_size() -> None:
    assert parts.in_flight(part_bytes=8 * MiB) == 4
    assert parts.in_flight(part_bytes=32 * MiB) == 2
    assert parts.in_flight(part_bytes=5 * GiB) == 2
    for size in (8 * MiB, 16 * MiB, 100 * MiB, GiB):
        assert parts.in_flight(part_bytes=size) * size <= max(64 * MiB, 2 * size)
