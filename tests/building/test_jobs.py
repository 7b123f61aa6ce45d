"""Step Job manifests: names, ownership, labels, secrets by reference, commands, pod template."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from alembic_operator.api import constants, model
from alembic_operator.api.model import RunView
from alembic_operator.api.status import BackupStatus
from alembic_operator.api.steps import STEPS, Step
from alembic_operator.controller import naming
from alembic_operator.controller.builders import jobs, pods
from alembic_operator.controller.settings import JobSettings, Settings

from .factories import UID, make_run, make_spec

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SETTINGS = Settings(jobs=JobSettings(operator_image="ghcr.io/example/alembic-operator:0.1.0"))
ALL_STEPS = list(Step)


def build(step: str, run: RunView | None = None, **kwargs) -> dict:
    return jobs.build_step_job(run=run or make_run(), step=step, settings=SETTINGS, **kwargs)


def container(job: dict) -> dict:
    [c] = job["spec"]["template"]["spec"]["containers"]
    return c


def env(job: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(job)["env"]}


@pytest.mark.parametrize("step", ALL_STEPS)
def test_job_names_are_valid_short_and_deterministic(step):
    long_run = make_run(name="a" * 200 + ".release-with.dots")
    for run in (make_run(), long_run):
        name = build(step, run)["metadata"]["name"]
        assert len(name) <= 63 and DNS1123.match(name), name
        assert name == build(step, run)["metadata"]["name"]
        assert f"-{step}-" in name


def test_job_names_differ_by_step_attempt_and_run_uid():
    names = {
        naming.job_name(run_name="r", run_uid=uid, step=step, attempt=attempt)
        for uid in ("u1", "u2")
        for step in ALL_STEPS
        for attempt in (1, 2)
    }
    assert len(names) == 2 * len(ALL_STEPS) * 2


@pytest.mark.parametrize("step", ALL_STEPS)
def test_jobs_are_owned_by_the_run(step):
    [ref] = build(step)["metadata"]["ownerReferences"]
    assert ref == {
        "apiVersion": "alembic-operator.dev/v1alpha1",
        "kind": "MigrationRun",
        "name": "shop-1-4-2",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


@pytest.mark.parametrize("step", ALL_STEPS)
def test_job_and_pod_carry_the_run_step_database_and_managed_by_labels(step):
    job = build(step)
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[constants.LABEL_RUN] == "shop-1-4-2"
        assert labels[constants.LABEL_STEP] == step
        assert labels[constants.LABEL_DATABASE] == naming.database_label(make_spec(), "shop")
        assert labels[constants.LABEL_MANAGED_BY] == "alembic-operator"
        assert all(len(v) <= 63 for v in labels.values())


def test_a_long_run_name_gives_a_valid_label_value():
    job = build("backup", make_run(name="x" * 120))
    value = job["metadata"]["labels"][constants.LABEL_RUN]
    assert len(value) <= 63 and re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", value)


@pytest.mark.parametrize("step", ALL_STEPS)
def test_steps_are_never_retried_and_have_their_deadline(step):
    job = build(step)
    assert job["spec"]["backoffLimit"] == 0
    deadlines = {"plan": 300, "backup": 3600, "migrate": 1800, "verify": 900, "restore": 3600, "drift": 900}
    deadlines["downgrade"] = 1800  # rollback.method: downgrade has the migration's deadline
    # A rehearsal's steps have the deadlines of the real ones they stand for (prepare is a restore).
    deadlines |= {"rehearse-prepare": 3600, "rehearse-migrate": 1800, "rehearse-verify": 900, "rehearse-drop": 900}
    expected = deadlines[step]
    assert job["spec"]["activeDeadlineSeconds"] == expected
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert container(job)["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize("step", ALL_STEPS)
def test_credentials_reach_the_pod_only_by_secret_reference(step):
    job = build(step)
    e = env(job)
    assert e["DATABASE_URL"]["valueFrom"] == {"secretKeyRef": {"name": "shop-db", "key": "DATABASE_URL"}}
    assert e["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}
    assert e["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    for name in ("DATABASE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in e[name]


def test_no_secret_value_appears_anywhere_in_any_manifest():
    text = json.dumps([build(step) for step in ALL_STEPS])
    assert "postgresql://" not in text and "password" not in text.lower()


def test_s3_settings_and_the_location_are_in_the_environment():
    e = env(build("backup"))
    assert e["S3_ENDPOINT"]["value"] == "http://s3.local:9000"
    assert e["S3_REGION"]["value"] == "us-east-1"
    assert e["S3_FORCE_PATH_STYLE"]["value"] == "true"
    assert "S3_SSE" not in e
    assert e[pods.LOCATION_ENV]["value"] == naming.location(
        spec=make_spec(), namespace="shop", run_name="shop-1-4-2", run_uid=UID
    )


def test_without_a_credentials_secret_no_aws_keys_are_set_and_sse_is_passed_when_asked():
    spec = make_spec(backup={"s3": {"credentialsSecretRef": None, "serverSideEncryption": "aws:kms"}})
    e = env(build("backup", make_run(spec)))
    assert "AWS_ACCESS_KEY_ID" not in e and "AWS_SECRET_ACCESS_KEY" not in e
    assert e["S3_SSE"]["value"] == "aws:kms"


def test_the_plan_runs_in_the_app_image_with_target_location_and_policy():
    spec = make_spec(migrate={"workingDir": "/app", "target": "b2"}, plan={"destructive": "block"})
    job = build("plan", make_run(spec))
    c = container(job)
    assert c["image"] == "registry.example/shop:1.4.2"
    loc = naming.location(spec=spec, namespace="shop", run_name="shop-1-4-2", run_uid=UID)
    assert c["command"] == [
        "alembic-operator",
        "plan",
        "--target",
        "b2",
        "--location",
        loc,
        "--policy",
        "block",
        "--unrendered",
        "report",
    ]
    assert c["workingDir"] == "/app"


def test_the_backup_runs_in_the_operator_image_with_every_option():
    spec = make_spec(
        backup={
            "format": "directory",
            "jobs": 4,
            "compression": "zstd:3",
            "retention": {"keepLast": 5, "maxAgeDays": 2},
            "verify": "restore",
        }
    )
    c = container(build("backup", make_run(spec)))
    assert c["image"] == SETTINGS.operator_image
    loc = naming.location(spec=spec, namespace="shop", run_name="shop-1-4-2", run_uid=UID)
    assert c["command"] == [
        "alembic-operator",
        "backup",
        "--location",
        loc,
        "--format",
        "directory",
        "--jobs",
        "4",
        "--compression",
        "zstd:3",
        "--retention-keep-last",
        "5",
        "--retention-max-age-seconds",
        "172800",
        "--verify",
        "restore",
    ]


def test_the_default_backup_command_is_minimal():
    c = container(build("backup"))
    assert c["command"][c["command"].index("--format") :] == ["--format", "custom", "--retention-keep-last", "10"]


def test_the_default_migrate_command_gets_target_and_lock_timeout_then_the_users_args():
    spec = make_spec(migrate={"args": ["--config", "db/alembic.ini"], "lockTimeout": "5s"})
    c = container(build("migrate", make_run(spec)))
    assert c["image"] == "registry.example/shop:1.4.2"
    assert c["command"] == ["alembic-operator", "migrate"]
    assert c["args"] == ["--target", "head", "--lock-timeout", "5s", "--config", "db/alembic.ini"]


def test_a_custom_migrate_command_is_left_alone():
    spec = make_spec(migrate={"command": ["alembic", "upgrade", "head"]})
    c = container(build("migrate", make_run(spec)))
    assert c["command"] == ["alembic", "upgrade", "head"]
    assert "args" not in c


def test_the_verify_command_carries_the_row_count_options_and_expected_revision():
    spec = make_spec(
        verify={
            "rowCounts": {
                "mode": "estimated",
                "include": ["public.*"],
                "exclude": ["audit.*", "x.y"],
                "allowDecrease": ["public.sessions", "public.tmp"],
            }
        }
    )
    c = container(build("verify", make_run(spec), expect_revision="b2"))
    assert c["command"][4:] == [
        "--mode",
        "estimated",
        "--allow-decrease",
        "public.sessions,public.tmp",
        "--include",
        "public.*",
        "--exclude",
        "audit.*",
        "--exclude",
        "x.y",
        "--expect-revision",
        "b2",
    ]


def test_the_restore_command_names_the_location():
    c = container(build("restore"))
    assert c["command"][:3] == ["alembic-operator", "restore", "--location"]
    assert c["image"] == SETTINGS.operator_image


def test_the_restore_holds_on_foreign_writes_unless_the_spec_or_a_person_says_restore():
    assert container(build("restore"))["command"][-2:] == ["--on-foreign-writes", "hold"]
    policy = make_run(make_spec(rollback={"onForeignWrites": "restore"}))
    assert container(build("restore", policy))["command"][-2:] == ["--on-foreign-writes", "restore"]
    approved = dataclasses.replace(make_run(), annotations={constants.ANNOTATION_APPROVE_RESTORE: "true"})
    assert container(build("restore", approved))["command"][-2:] == ["--on-foreign-writes", "restore"]


@pytest.mark.parametrize("step", ALL_STEPS)
def test_the_default_security_context_is_restricted_compatible(step):
    job = build(step)
    pod = job["spec"]["template"]["spec"]
    c = container(job)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    assert "hostNetwork" not in pod and "hostPID" not in pod


def test_run_as_user_and_group_come_from_settings_when_set():
    settings = Settings(jobs=JobSettings(run_as_user=1000, run_as_group=1000, fs_group=1000))
    job = jobs.build_step_job(run=make_run(), step=Step.BACKUP, settings=settings)
    ctx = job["spec"]["template"]["spec"]["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (1000, 1000, 1000)


def test_pod_template_overrides_are_applied():
    spec = make_spec(
        podTemplate={
            "serviceAccountName": "migrator",
            "resources": {"limits": {"memory": "1Gi"}},
            "nodeSelector": {"pool": "db"},
            "tolerations": [{"key": "db", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {}},
            "labels": {"team": "shop", constants.LABEL_STEP: "nope"},
            "annotations": {"sidecar.istio.io/inject": "false"},
            "imagePullSecrets": [{"name": "regcred"}],
            "securityContext": {"runAsUser": 70},
            "containerSecurityContext": {"privileged": False},
            "priorityClassName": "high",
        }
    )
    job = build("migrate", make_run(spec))
    template = job["spec"]["template"]
    pod = template["spec"]
    c = container(job)
    assert pod["serviceAccountName"] == "migrator" and pod["automountServiceAccountToken"] is True
    assert c["resources"] == {"limits": {"memory": "1Gi"}}
    assert pod["nodeSelector"] == {"pool": "db"}
    assert pod["tolerations"] == [{"key": "db", "operator": "Exists"}]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert template["metadata"]["labels"]["team"] == "shop"
    assert template["metadata"]["labels"][constants.LABEL_STEP] == "migrate"  # ours win
    assert template["metadata"]["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["securityContext"] == {"runAsUser": 70}
    assert c["securityContext"] == {"privileged": False}
    assert pod["priorityClassName"] == "high"


def test_jobs_carry_their_attempt():
    job = build("backup", attempt=2)
    assert job["metadata"]["annotations"][naming.ANNOTATION_ATTEMPT] == "2"
    assert job["metadata"]["name"] == naming.job_name(run_name="shop-1-4-2", run_uid=UID, step="backup", attempt=2)


@pytest.mark.parametrize("step", ALL_STEPS)
def test_each_step_runs_in_the_image_its_step_info_names_and_only_the_app_image_gets_the_working_dir(step):
    c = container(build(step, make_run(make_spec(migrate={"workingDir": "/app"}))))
    app = STEPS[step].image == "app"
    assert c["image"] == ("registry.example/shop:1.4.2" if app else SETTINGS.operator_image)
    assert c.get("workingDir") == ("/app" if app else None)


def test_an_unknown_step_is_refused():
    with pytest.raises(ValueError, match="unknown step"):
        build("dance")


def test_the_restore_is_bound_to_the_backups_dump_checksum_and_chunk_list_when_the_status_has_them():
    status = model.MigrationRunStatus(
        backup=BackupStatus(uri="s3://b/p/run/dump.pgdump", sha256="ab" * 32, chunks_sha256="cd" * 32)
    )
    command = container(build("restore", dataclasses.replace(make_run(), status=status)))["command"]
    assert command[command.index("--backup-uri") + 1] == "s3://b/p/run/dump.pgdump"
    assert command[command.index("--backup-sha256") + 1] == "ab" * 32
    assert command[command.index("--backup-chunks-sha256") + 1] == "cd" * 32  # the restore may stream
    older = model.MigrationRunStatus(backup=BackupStatus(uri="s3://b/p/run/dump.pgdump", sha256="ab" * 32))
    command = container(build("restore", dataclasses.replace(make_run(), status=older)))["command"]
    assert "--backup-sha256" in command and "--backup-chunks-sha256" not in command  # downloads, then checks
