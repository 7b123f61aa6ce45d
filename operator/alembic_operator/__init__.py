"""alembic-operator: safe, unattended PostgreSQL schema migrations on Kubernetes."""

__version__ = "0.1.0"
