# alembic-operator — every set-up step is a target; `make demo` and `make test`
# do all set-up on a fresh machine with Python 3.11+ and Go (see README).
SHELL := bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PYTHONPATH := $(CURDIR)

.PHONY: setup tools test test-unit faults demo crds crds-check bench clean release chart-docs
.PHONY: lint lint-style lint-format lint-types lint-imports lint-duplicates

include image/image.mk
include faults.mk

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -e '.[test]'
	touch $@

## setup: the Python environment and the Debian packages the test bed needs
setup: $(VENV)/.installed
	bash .ci/system-deps.sh

## tools: build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl, helm, versitygw,
## containerd, promtool and helm-docs (their own modules, tools/containerd, tools/promtool, tools/helm-docs) — all cached by their module files
tools:
	bash tools/build.sh
	bash tools/containerd/build.sh >/dev/null
	bash tools/promtool/build.sh >/dev/null
	bash tools/helm-docs/build.sh >/dev/null

## crds: regenerate crds/ from the model (the model is the source of truth)
crds: $(VENV)/.installed
	$(PY) -m alembic_operator.api.crd

crds-check: $(VENV)/.installed
	$(PY) -m alembic_operator.api.crd --check

## test: everything CI runs — lint first, then unit, test bed, steps, images, operator end to end, faults
##   in PYTEST_WORKERS pytest-xdist workers, each with its own bed (PYTEST_WORKERS=0: one process, serial)
PYTEST_WORKERS ?= 4
PYTEST_DIST ?= loadgroup
PYTEST_XDIST = -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST)
PYTEST_BED = $(VENV)/bin/pytest -q --durations=40 $(PYTEST_XDIST)
test: lint setup tools image
	$(PY) -m alembic_operator.api.crd --check
	# every pod on the bed's real node (testbed/node.py), from the built images; the 40 slowest tests listed last
	$(PYTEST_BED) -m "not full" $(PYTEST_ARGS)
	# nothing of any bed may be left: process, mount, cgroup, network namespace (testbed/node.py)
	$(PY) -m testbed.node check

## test-full: `make test` plus what it leaves out to stay inside CI's budget — the end-to-end and fault suites'
##   PostgreSQL 18 cases and the tests marked `full` (tests/conftest.py), 20 concurrent runs instead of 10, and
##   the larger security sizes of test-security-full
.PHONY: test-full
test-full: lint setup tools image
	$(PY) -m alembic_operator.api.crd --check
	HOSTILE_PASSWORD_RUNS=$${HOSTILE_PASSWORD_RUNS:-5} HOSTILE_PASSWORD_EXAMPLES=$${HOSTILE_PASSWORD_EXAMPLES:-20} \
	MALFORMED_RESULT_WINDOW_SECONDS=$${MALFORMED_RESULT_WINDOW_SECONDS:-300} CONCURRENT_RUNS=$${CONCURRENT_RUNS:-20} \
	$(PYTEST_BED) $(PYTEST_ARGS)
	$(PY) -m testbed.node check

## lint: every check below, each its own target so make names the one that fails
##   (`make -k lint` runs them all; `make test` runs lint first)
LINT_PATHS := operator tests testbed bench
lint: lint-style lint-format lint-types lint-imports lint-duplicates

## lint-style: ruff's rules (pyproject.toml [tool.ruff])
lint-style: $(VENV)/.installed
	$(VENV)/bin/ruff check --output-format concise $(LINT_PATHS)

## lint-format: code is as `ruff format` writes it (`ruff format --diff FILE` shows how)
lint-format: $(VENV)/.installed
	$(VENV)/bin/ruff format --check --output-format concise $(LINT_PATHS)

## lint-types: mypy, strict, over the package (pyproject.toml [tool.mypy])
lint-types: $(VENV)/.installed
	$(VENV)/bin/mypy

## lint-imports: the layers and who-may-import-what contracts in .importlinter
lint-imports: $(VENV)/.installed
	$(VENV)/bin/lint-imports

## lint-duplicates: no copied block of 8+ lines in the package (pylint duplicate-code only)
lint-duplicates: $(VENV)/.installed
	$(VENV)/bin/pylint --disable=all --enable=duplicate-code --persistent=n --score=n operator/alembic_operator

## test-security-full: the hostile-password tests with more draws than `make test` (which draws one
##   end to end, printed with its seed): HOSTILE_PASSWORD_RUNS through the operator, HOSTILE_PASSWORD_EXAMPLES per step;
##   and the malformed-result run watched for the issue's whole 5 minutes (`make test` watches 60 s)
.PHONY: test-security-full
test-security-full: setup tools image
	HOSTILE_PASSWORD_RUNS=$${HOSTILE_PASSWORD_RUNS:-5} HOSTILE_PASSWORD_EXAMPLES=$${HOSTILE_PASSWORD_EXAMPLES:-20} \
	MALFORMED_RESULT_WINDOW_SECONDS=$${MALFORMED_RESULT_WINDOW_SECONDS:-300} \
	  $(VENV)/bin/pytest -q -s tests/security/test_secrets_never_leak.py tests/security/test_hostile_passwords.py \
	  tests/security/test_malformed_result_end_to_end.py $(PYTEST_ARGS)

## test-unit: the fast, server-free tests only
test-unit: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/unit tests/reconciling tests/building tests/model $(PYTEST_ARGS)

## demo: the whole flow on the local test bed
demo: setup tools image
	$(PY) -m testbed.demo

## release: dist/ — both images as OCI archives, the packaged charts, a one-file install manifest,
##   SHA256SUMS (charts/release.sh; README "Installing a release")
release: tools image
	bash charts/release.sh

## chart-docs: write charts/{alembic-operator,example-app}/README.md with helm-docs (tools/helm-docs/build.sh)
##   from values.yaml's `# --` comments; tests/helm/test_chart_readme.py checks they do not drift
chart-docs:
	cd charts && "$$(bash ../tools/helm-docs/build.sh | tail -n1)" -g alembic-operator,example-app -l warning

## bench: benchmarks against the plain tools (not part of `make test`)
bench: setup tools
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build dist
