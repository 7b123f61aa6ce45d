"""The controller: runs in the operator pod (``alembic-operator operator``).

Kopf wiring (:mod:`.handlers`), what it observes and applies, the pure
reconciler and the pure builders of the Jobs it creates. Must not: import
:mod:`alembic_operator.job` or :mod:`alembic_operator.client` — the operator
never touches a database, S3 or a Secret; it only creates Jobs that do.
"""
