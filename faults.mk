# The fault matrix (issue #5). Included by the Makefile (`include faults.mk`).
#
#   make faults   injects every fault of tests/faults (and the operator-restart faults of
#                 tests/e2e/test_operator_restarts.py, reused, not duplicated; the fault rows on
#                 PostgreSQL 15 and 18, 20 concurrent runs — `make test` runs them on 15, and on 18
#                 the rows marked both_majors, with 10 concurrent runs) on the real
#                 test bed, prints one row per fault — fault, expected phase, observed
#                 phase, data intact — and regenerates docs/faults.md from those rows.
#                 Fails when a test fails or a row is not "expected phase, data intact: yes".
FAULTS_RESULTS ?= $(CURDIR)/build/faults/results.jsonl
export FAULTS_RESULTS

.PHONY: faults

## faults: inject each fault for real, print the fault table, regenerate docs/faults.md
faults: setup tools
	@rm -f $(FAULTS_RESULTS)
	@status=0; \
	CONCURRENT_RUNS=$${CONCURRENT_RUNS:-20} $(VENV)/bin/pytest -q $(PYTEST_XDIST) -p tests.faults.recording tests/faults tests/e2e/test_operator_restarts.py \
		-k "not (test_an_operator_killed and pg18)" $(PYTEST_ARGS) || status=$$?; \
	echo; $(PY) -m tests.faults.report --write docs/faults.md --readme README.md || status=$${status:-1}; \
	[ $$status -eq 0 ] || status=1; exit $$status
