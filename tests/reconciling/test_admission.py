"""The administrator's policy: a refused run ends Failed naming the rule, and nothing is started.

Pure decisions (controller/reconciler/admission.py) fed by AdmissionSettings, which the chart sets
through ALEMBIC_OPERATOR_* variables (read here by Settings.from_env, as the operator does).
"""

from __future__ import annotations

import json

import pytest

from alembic_operator.api.conditions import Reason
from alembic_operator.api.model import Phase
from alembic_operator.controller.reconciler import CreateJob, ScaleWorkload, admission
from alembic_operator.controller.settings import AdmissionSettings, S3Allowance, Settings
from tests.reconciling.world import World, make_spec


def _world(*, policy: AdmissionSettings, **spec: object) -> World:
    return World(make_spec(**spec), settings=Settings(admission=policy))


def _s3(**over: object) -> dict[str, object]:
    return {"backup": {"s3": {"bucket": "shop-backups", "endpoint": "https://s3.local:9000", **over}}}


@pytest.mark.parametrize(
    ("policy", "spec", "rule"),
    [
        (AdmissionSettings(), _s3(endpoint="http://attacker.example"), "is plain http://"),
        (
            AdmissionSettings(s3=S3Allowance(endpoints=("https://s3.corp",))),
            _s3(),
            "backup.s3.endpoint https://s3.local:9000 is not among the S3 endpoints allowed in namespace shop",
        ),
        (
            AdmissionSettings(s3=S3Allowance(buckets=("approved",))),
            _s3(),
            "backup.s3.bucket shop-backups is not among the buckets allowed in namespace shop (approved)",
        ),
        (
            AdmissionSettings(s3_by_namespace={"shop": S3Allowance(buckets=("shop-only",))}),
            _s3(),
            "buckets allowed in namespace shop (shop-only)",
        ),
        (
            AdmissionSettings(registries=("ghcr.io",)),
            {"migrate": {"image": "docker.io/attacker/miner:1"}},
            "comes from registry docker.io, not one of the allowed registries (ghcr.io)",
        ),
    ],
)
def test_a_run_the_policy_refuses_fails_naming_the_rule_and_starts_nothing(policy, spec, rule):
    world = _world(policy=policy, **spec)
    decision = world.tick()
    assert world.phase == Phase.FAILED
    assert rule in world.status.message and "nothing was started" in world.status.message
    assert not [a for a in decision.actions if isinstance(a, CreateJob | ScaleWorkload)]
    assert [e.reason for e in decision.events] == [Reason.POLICY_REFUSED]
    assert world.tick().actions == []  # terminal: nothing later either


def test_a_run_within_the_policy_starts_its_plan():
    policy = AdmissionSettings(
        s3=S3Allowance(endpoints=("https://s3.local:9000/",), buckets=("shop-backups",)),
        registries=("registry.example",),
    )
    world = _world(policy=policy, **_s3())
    assert [a.name for a in world.tick().creates] == [world.job("plan")]


def test_http_is_accepted_only_where_an_administrator_allowed_it():
    assert (
        admission.refusal(
            run=_world(policy=AdmissionSettings(), **_s3(endpoint="http://s3:7070")).run,
            policy=AdmissionSettings(s3_allow_http=True),
        )
        is None
    )


def test_a_namespace_list_replaces_the_global_one_only_there():
    policy = AdmissionSettings(
        s3=S3Allowance(buckets=("global",)), s3_by_namespace={"shop": S3Allowance(buckets=("shop-backups",))}
    )
    assert policy.s3_for("shop").buckets == ("shop-backups",)
    assert policy.s3_for("other").buckets == ("global",)


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("app:1", "docker.io"),
        ("library/app", "docker.io"),
        ("ghcr.io/o/app:1", "ghcr.io"),
        ("localhost:5000/app", "localhost:5000"),
        ("localhost/app", "localhost"),
    ],
)
def test_the_registry_of_an_image_is_its_first_component_when_that_names_a_host(image, registry):
    assert admission.image_registry(image) == registry


def test_the_chart_variables_become_the_policy():
    settings = Settings.from_env(
        {
            "ALEMBIC_OPERATOR_S3_ALLOWED_ENDPOINTS": "https://a, https://b",
            "ALEMBIC_OPERATOR_S3_ALLOWED_BUCKETS": "x",
            "ALEMBIC_OPERATOR_S3_ALLOW_HTTP": "true",
            "ALEMBIC_OPERATOR_S3_NAMESPACE_POLICY": json.dumps({"shop": {"allowedBuckets": ["y"]}}),
            "ALEMBIC_OPERATOR_ALLOWED_REGISTRIES": "ghcr.io",
        }
    )
    assert settings.admission == AdmissionSettings(
        s3=S3Allowance(endpoints=("https://a", "https://b"), buckets=("x",)),
        s3_by_namespace={"shop": S3Allowance(buckets=("y",))},
        s3_allow_http=True,
        registries=("ghcr.io",),
    )
    assert Settings.from_env({}).admission == AdmissionSettings()  # https only, anything else allowed
