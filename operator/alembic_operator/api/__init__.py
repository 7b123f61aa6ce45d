"""The contract: the MigrationRun API types and what every process agrees on.

Imported by the controller (operator pod), the job steps (step pods), the
clients (Helm hook, init container) and the generators; it runs in all of
them. Must not: import anything of alembic_operator outside ``api``, or do I/O
(except :mod:`.results` writing the termination message and :mod:`.crd`
writing the generated CRD file).
"""
