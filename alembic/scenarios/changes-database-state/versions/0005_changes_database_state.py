"""Scenario changes-database-state: database-level state outside any table changes, then verify fails.

The revision commits changes that ``pg_dump`` without ``--create`` leaves out
(the database's and the role's settings in this database, the database's ACL
and comment), default privileges and publications, and deletes every tenth
task so verify catches it and the run restores: the restore must put all of
it back (issue 13, finding 2). The search_path change alone would make the
application lose its tables after a rollback that missed it.

Revision ID: 0005
Revises: 0004
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# The database's name is only known on the server: format() quotes it there.
DATABASE_STATE = """
DO $scenario$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET search_path = elsewhere', current_database());
  EXECUTE format('ALTER DATABASE %I SET work_mem = %L', current_database(), '64MB');
  EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L',
                 current_user, current_database(), '7s');
  EXECUTE format('GRANT CREATE ON DATABASE %I TO PUBLIC', current_database());
  EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(), 'changed by 0005');
END
$scenario$
"""


def upgrade() -> None:
    op.execute(DATABASE_STATE)
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC")
    op.execute("CREATE PUBLICATION scenario_pub FOR TABLE task")
    op.execute("ALTER PUBLICATION app_pub ADD TABLE comment")
    op.execute("DELETE FROM comment WHERE task_id IN (SELECT id FROM task WHERE id % 10 = 0)")
    op.execute("DELETE FROM task WHERE id % 10 = 0")


def downgrade() -> None:
    pass  # deleted rows cannot be brought back: that is what the backup is for
