"""``kubectl alembic``: what on-call types at 3 a.m. (issue 19).

A plain executable, ``kubectl-alembic`` (the ``client`` extra's console script), that
kubectl finds on ``PATH``. It runs with the user's own credentials (their kubeconfig),
never the operator's, so it can see and do only what they may.

Modules:

1. :mod:`.connecting` — an API client from the user's kubeconfig and context;
2. :mod:`.reading` — every API call the plugin makes (runs, pods, ``pods/log``, who am I,
   the approval annotation, deleting a held run);
3. :mod:`.stories` and :mod:`.inventory` — pure: a run's story, why it failed, its
   backups and what retention will remove, as text;
4. :mod:`.main` — the subcommands, each a guard plus one call.

Must not: import :mod:`alembic_operator.controller` or :mod:`alembic_operator.job`
(contract d), read Secrets or S3 — everything shown comes from the runs' status and
the step pods.
"""
