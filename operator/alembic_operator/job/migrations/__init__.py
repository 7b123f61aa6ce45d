"""The user's Alembic project for the job steps: its revisions, running them, classifying their SQL."""
