"""taskapp: the example application whose schema alembic-operator's tests, demo and benchmarks migrate."""
