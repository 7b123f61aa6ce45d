"""The job steps: run in the step pods (``alembic-operator backup|migrate|verify|restore|plan|wait``).

:mod:`.commands` holds one module per step; the rest are their helpers by
system: :mod:`.database` (PostgreSQL connections and client tools),
:mod:`.storage` (S3, dumps, the manifest), :mod:`.migrations` (the user's
Alembic scripts and their runtime), :mod:`.checks` (row and write counters).
Must not: import kopf, kubernetes or :mod:`alembic_operator.controller` — a
step pod runs in the application's image with only the base install.
"""
