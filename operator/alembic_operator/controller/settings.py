"""Operator settings: one dataclass per concern, composed into :class:`Settings` (Kopf style).

Read once at start-up with :func:`Settings.from_env`; the reconciler and the
builders receive the object and never read the environment themselves.

Must not: do I/O beyond reading the given environment mapping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobSettings:
    """How step Jobs are built."""

    operator_image: str = "alembic-operator:dev"
    """Image of the backup, verify and restore steps (the operator's own). Env ALEMBIC_OPERATOR_IMAGE."""

    image_pull_policy: str | None = None
    """imagePullPolicy of every step container; None leaves the Kubernetes default.
    Env ALEMBIC_OPERATOR_IMAGE_PULL_POLICY."""

    run_as_user: int | None = None
    """runAsUser of step pods (uid); None relies on the image's non-root USER. Env ALEMBIC_OPERATOR_RUN_AS_USER."""

    run_as_group: int | None = None
    """runAsGroup of step pods (gid); None leaves the image's. Env ALEMBIC_OPERATOR_RUN_AS_GROUP."""

    fs_group: int | None = None
    """fsGroup of step pods (gid) for mounted volumes; None leaves it unset. Env ALEMBIC_OPERATOR_FS_GROUP."""

    deadline_slack_seconds: int = 60
    """Seconds past a step's deadline after which the operator fails it itself, should the Job controller not."""

    retain_seconds: int | None = 300
    """Seconds an ended run keeps its step Jobs (with their Pods and logs) before the operator deletes them;
    the status keeps every result. None keeps them until the run is deleted. Env
    ALEMBIC_OPERATOR_JOB_RETAIN_SECONDS (an integer, or ``forever``)."""

    retain_failed: bool = True
    """Keep the Job of a step that failed until the run is deleted, whatever ``retain_seconds`` says: its log
    says why. Env ALEMBIC_OPERATOR_JOB_RETAIN_FAILED=false deletes it with the others."""

    tools_without_ssl: tuple[int, ...] | None = None
    """Majors whose client tools in the operator's image lack SSL, found at start-up (``cli``); every step gets
    them (steps in the app's image have no tools to ask). None: unknown, steps ask their own tools.
    Env ALEMBIC_OPERATOR_TOOLS_WITHOUT_SSL (comma-separated)."""


@dataclass(frozen=True)
class ReconcileSettings:
    """How the reconciler waits and retries."""

    job_grace_seconds: int = 30
    """Seconds a Job recorded in status may stay unobserved (informer lag) before it counts as vanished."""

    max_attempts: int = 3
    """Attempts of a repeatable step (plan, backup, verify, restore) whose Job vanished; migrate is never repeated."""

    poll_seconds: int = 30
    """Seconds between re-checks while a step runs (Job and Pod changes also wake the handler)."""

    queued_poll_seconds: int = 15
    """Seconds between re-checks while a run is Queued behind another."""

    max_running_runs: int | None = 10
    """Runs that may run a step at once, operator-wide; a run past the limit waits Queued and starts when one
    ends (:mod:`.reconciler.queue`). A run waiting for a person (approval, a held restore) does not count. Each
    running run has one step container; on a 2-core node 100 of them starved each other past their deadlines
    (issue 18). None: no limit. Env ALEMBIC_OPERATOR_MAX_RUNNING_RUNS (a positive integer, or ``unlimited``)."""

    held_poll_seconds: int = 60
    """Seconds between re-checks while a restore is held for approval."""

    fence_read_poll_seconds: float = 2
    """Seconds between re-checks while the fenced workloads have not been read yet (the handler reads them)."""

    fence_poll_seconds: float = 1
    """Seconds between re-checks while the write fence is raised: the record stored, then the pods stopping."""

    migrate_pod_poll_seconds: float = 5
    """Seconds between re-checks while a failed migration's pod stops (it may hold locks) before the restore."""

    restore_retry_seconds: int = 5
    """Seconds before restore attempt N+1 is N times this: time for PostgreSQL or S3 to come back."""

    min_requeue_seconds: float = 1
    """Shortest requeue the reconciler asks for, in seconds (Kopf's timers and the API need not spin)."""


@dataclass(frozen=True)
class WatchSettings:
    """What the operator watches."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster. Env ALEMBIC_OPERATOR_NAMESPACES (comma-separated)."""


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics."""

    port: int = 8080
    """TCP port of the /metrics endpoint; 0 disables it. Env ALEMBIC_OPERATOR_METRICS_PORT."""


@dataclass(frozen=True)
class S3Allowance:
    """Where one namespace's runs may back up to; an empty list leaves the global one in force."""

    endpoints: tuple[str, ...] = ()
    """Allowed ``backup.s3.endpoint`` values (scheme://host[:port]; "" is AWS's default endpoint)."""

    buckets: tuple[str, ...] = ()
    """Allowed ``backup.s3.bucket`` values."""


@dataclass(frozen=True)
class AdmissionSettings:
    """The administrator's policy, checked before a run starts anything (:mod:`.reconciler.admission`).

    Empty lists allow anything; a refused run ends Failed naming the rule, with no Job created.
    """

    s3: S3Allowance = field(default_factory=S3Allowance)
    """Allowed S3 endpoints and buckets everywhere. Env ALEMBIC_OPERATOR_S3_ALLOWED_ENDPOINTS,
    ALEMBIC_OPERATOR_S3_ALLOWED_BUCKETS (comma-separated)."""

    s3_by_namespace: Mapping[str, S3Allowance] = field(default_factory=dict)
    """Per namespace, replacing the global lists there. Env ALEMBIC_OPERATOR_S3_NAMESPACE_POLICY:
    JSON ``{"ns": {"allowedEndpoints": [...], "allowedBuckets": [...]}}``."""

    s3_allow_http: bool = False
    """Accept ``http://`` S3 endpoints (request signing then sends the access key id in clear).
    Env ALEMBIC_OPERATOR_S3_ALLOW_HTTP=true."""

    registries: tuple[str, ...] = ()
    """Registries ``migrate.image`` may come from (docker.io for names without one).
    Env ALEMBIC_OPERATOR_ALLOWED_REGISTRIES (comma-separated)."""

    def s3_for(self, namespace: str) -> S3Allowance:
        """The endpoints and buckets allowed in ``namespace``: its own lists where given, else the global ones."""
        own = self.s3_by_namespace.get(namespace, S3Allowance())
        return S3Allowance(endpoints=own.endpoints or self.s3.endpoints, buckets=own.buckets or self.s3.buckets)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AdmissionSettings:
        """Read the ALEMBIC_OPERATOR_* variables of the policy; raises ValueError on malformed JSON."""

        def words(name: str) -> tuple[str, ...]:
            return tuple(w.strip() for w in env.get(name, "").split(",") if w.strip())

        by_namespace = json.loads(env.get("ALEMBIC_OPERATOR_S3_NAMESPACE_POLICY") or "{}")
        if not isinstance(by_namespace, dict):
            raise ValueError("ALEMBIC_OPERATOR_S3_NAMESPACE_POLICY must be a JSON object of namespaces")
        return cls(
            s3=S3Allowance(
                endpoints=words("ALEMBIC_OPERATOR_S3_ALLOWED_ENDPOINTS"),
                buckets=words("ALEMBIC_OPERATOR_S3_ALLOWED_BUCKETS"),
            ),
            s3_by_namespace={
                str(ns): S3Allowance(
                    endpoints=tuple(str(e) for e in (rule or {}).get("allowedEndpoints") or ()),
                    buckets=tuple(str(b) for b in (rule or {}).get("allowedBuckets") or ()),
                )
                for ns, rule in by_namespace.items()
            },
            s3_allow_http=env.get("ALEMBIC_OPERATOR_S3_ALLOW_HTTP", "").strip().lower() == "true",
            registries=words("ALEMBIC_OPERATOR_ALLOWED_REGISTRIES"),
        )


@dataclass(frozen=True)
class Settings:
    """All operator settings."""

    jobs: JobSettings = field(default_factory=JobSettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)

    @property
    def operator_image(self) -> str:
        """Shortcut for ``jobs.operator_image``."""
        return self.jobs.operator_image

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ALEMBIC_OPERATOR_* variables; anything unset keeps its default."""
        env = os.environ if environ is None else environ

        def opt_int(name: str) -> int | None:
            value = env.get(name, "").strip()
            return int(value) if value else None

        jobs = JobSettings(
            operator_image=env.get("ALEMBIC_OPERATOR_IMAGE") or JobSettings.operator_image,
            image_pull_policy=env.get("ALEMBIC_OPERATOR_IMAGE_PULL_POLICY") or None,
            run_as_user=opt_int("ALEMBIC_OPERATOR_RUN_AS_USER"),
            run_as_group=opt_int("ALEMBIC_OPERATOR_RUN_AS_GROUP"),
            fs_group=opt_int("ALEMBIC_OPERATOR_FS_GROUP"),
            tools_without_ssl=_majors(env.get("ALEMBIC_OPERATOR_TOOLS_WITHOUT_SSL")),
            retain_seconds=_whole_or_word(
                env, "ALEMBIC_OPERATOR_JOB_RETAIN_SECONDS", JobSettings.retain_seconds, "forever", 0
            ),
            retain_failed=env.get("ALEMBIC_OPERATOR_JOB_RETAIN_FAILED", "true").strip().lower() != "false",
        )
        namespaces = tuple(n.strip() for n in env.get("ALEMBIC_OPERATOR_NAMESPACES", "").split(",") if n.strip())
        port = opt_int("ALEMBIC_OPERATOR_METRICS_PORT")
        return cls(
            jobs=jobs,
            reconcile=ReconcileSettings(
                max_running_runs=_whole_or_word(
                    env, "ALEMBIC_OPERATOR_MAX_RUNNING_RUNS", ReconcileSettings.max_running_runs, "unlimited", 1
                )
            ),
            watch=WatchSettings(namespaces=namespaces),
            metrics=MetricsSettings(port=MetricsSettings.port if port is None else port),
            admission=AdmissionSettings.from_env(env),
        )


def _majors(value: str | None) -> tuple[int, ...] | None:
    """``"16,18"`` → (16, 18); unset → None (unknown), empty → () (none)."""
    return None if value is None else tuple(sorted({int(p) for p in value.split(",") if p.strip()}))


def _whole_or_word(env: Mapping[str, str], variable: str, default: int | None, word: str, minimum: int) -> int | None:
    """``variable`` in ``env``: ``"600"`` → 600; ``word`` → None; unset or empty → ``default``. Raises ValueError
    naming ``variable`` for anything else, or a number below ``minimum``: the operator stops rather than guess."""
    value = env.get(variable)
    text = (value or "").strip().lower()
    if not text:
        return default
    if text == word:
        return None
    if not text.isdigit() or int(text) < minimum:
        raise ValueError(f"{variable} must be a whole number (>= {minimum}) or {word!r}, not {value!r}")
    return int(text)
