"""Clients of the operator: ``alembic-operator run`` (the Helm hook Job, CI).

Runs in the application's image (the ``client`` extra adds the Kubernetes
client). Must not: import :mod:`alembic_operator.controller` or
:mod:`alembic_operator.job`; it talks to the API only through
:mod:`alembic_operator.kube`.
"""
