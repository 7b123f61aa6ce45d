"""Foreign writes from write counters: growth since the backup minus the migration's own writes."""

from alembic_operator.job.checks import writecounters


def c(ins: int = 0, upd: int = 0, dele: int = 0) -> dict[str, int]:
    return {"n_tup_ins": ins, "n_tup_upd": upd, "n_tup_del": dele}


def test_writes_since_the_backup_minus_the_migrations_own_are_foreign():
    backup = {"public.task": c(100), "public.project": c(10)}
    now = {"public.task": c(100, 0, 30), "public.project": c(130)}
    own = {"public.task": c(0, 0, 30), "public.alembic_version": c(0, 1)}
    assert writecounters.foreign(backup=backup, now=now, own=own) == {"public.project": c(120)}


def test_without_the_migrations_own_writes_everything_counts_as_foreign():
    found = writecounters.foreign(backup={"public.task": c(5)}, now={"public.task": c(5, 2, 3)}, own=None)
    assert found == {"public.task": c(0, 2, 3)}


def test_a_table_whose_counters_went_down_was_recreated_and_counts_from_zero():
    found = writecounters.foreign(backup={"public.t": c(500)}, now={"public.t": c(7)}, own={})
    assert found == {"public.t": c(7)}


def test_a_table_created_after_the_backup_counts_everything_it_got():
    assert writecounters.foreign(backup={}, now={"public.new": c(4)}, own={"public.new": c(1)}) == {"public.new": c(3)}


def test_own_writes_larger_than_the_growth_never_go_negative():
    assert writecounters.subtract({"public.t": c(1)}, {"public.t": c(5)}) == {}


def test_own_writes_accumulate_over_commits():
    acc = writecounters.add({}, {"public.t": c(1)})
    writecounters.add(acc, {"public.t": c(2, 1)})
    assert acc == {"public.t": c(3, 1)}


def test_the_report_lists_most_written_tables_first_with_a_total():
    rep = writecounters.report({"public.a": c(1), "public.b": c(100, 20)}, own_known=True, stats_uri="s3://b/x")
    assert [t["table"] for t in rep["tables"]] == ["public.b", "public.a"]
    assert rep["rows"] == 121 and rep["tables"][0] == {
        "table": "public.b",
        "rows": 120,
        "inserted": 100,
        "updated": 20,
        "deleted": 0,
    }
    assert writecounters.describe(rep) == "public.b: ~120 rows, public.a: ~1 rows"


def test_own_writes_are_used_only_when_the_migrate_step_said_they_are_complete():
    doc = {"ownWrites": {"public.t": c(1)}, "ownWritesComplete": True}
    assert writecounters.own_writes(doc) == {"public.t": c(1)}
    assert writecounters.own_writes({**doc, "ownWritesComplete": False}) is None
    assert writecounters.own_writes(None) is None


def test_counters_settle_when_two_polls_agree():
    assert writecounters.settled({"t": c(1)}, {"t": c(1)})
    assert not writecounters.settled(None, {"t": c(1)})
    assert not writecounters.settled({"t": c(1)}, {"t": c(2)})


def test_a_table_the_migration_renamed_keeps_its_history():
    backup = {"public.worker": {**c(2), "relid": 41}}
    now = {"public.member": {**c(2), "relid": 41}}
    assert writecounters.foreign(backup=backup, now=now, own={}) == {}


def test_a_table_dropped_and_recreated_under_its_name_counts_from_zero():
    backup = {"public.t": {**c(2), "relid": 41}}
    now = {"public.t": {**c(3), "relid": 99}}
    assert writecounters.foreign(backup=backup, now=now, own={}) == {"public.t": c(3)}
