"""The operator process loads neither official client (issue 18: ~70 MiB of its memory at rest).

Kopf imports ``kubernetes`` and ``kubernetes_asyncio`` (shipped in one wheel) when it can;
:func:`controller.main.skip_model_clients` makes them unimportable before Kopf is imported, and the
operator's calls go through :mod:`controller.apiserver`. Each case runs in a fresh interpreter,
since an import cannot be undone in this one."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
{before}
import kopf
from kopf._cogs.helpers import thirdparty
from alembic_operator.controller import handlers
registry = kopf.get_default_registry()
kinds = (registry._changing, registry._indexing)
body = {{"metadata": {{}}}}
kopf.label(body, {{"a": "b"}})
print(json.dumps({{
    "async_loaded": sys.modules.get("kubernetes_asyncio") is not None,
    "sync_loaded": sys.modules.get("kubernetes") is not None,
    "kopf_async_meta": thirdparty.V1ObjectMetaAsync is not None,
    "handlers": sum(len(list(r.get_all_handlers())) for r in kinds),
    "timers_and_daemons": len(list(registry._spawning.get_all_handlers())),
    "adopted_labels": body["metadata"]["labels"],
}}))
"""


def _probe(before: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(before=before)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_operator_starts_kopf_without_either_official_client_and_keeps_its_handlers() -> None:
    seen = _probe("from alembic_operator.controller import main; main.skip_model_clients()")
    assert seen["async_loaded"] is False
    assert seen["kopf_async_meta"] is False  # Kopf took it as "not installed"
    assert seen["sync_loaded"] is False  # the operator's calls go through controller/apiserver.py
    assert isinstance(seen["handlers"], int) and seen["handlers"] >= 4  # reconcile handlers and the indexes
    assert seen["adopted_labels"] == {"a": "b"}  # Kopf's body helpers work on plain dicts as before


def test_no_kopf_timer_or_daemon_makes_kopf_keep_each_runs_whole_body() -> None:
    """A Kopf timer or daemon keeps every served object's whole body (``live_fresh_body``), finished
    ones too: the operator's periodic work is one loop each (controller/sweeping.py)."""
    seen = _probe("from alembic_operator.controller import main; main.skip_model_clients()")
    assert seen["timers_and_daemons"] == 0


def test_without_it_kopf_would_load_both_clients() -> None:
    """The premise: if a later Kopf stops importing them, this fails and the step can go."""
    seen = _probe("")
    assert seen["async_loaded"] is True
    assert seen["sync_loaded"] is True
    assert seen["kopf_async_meta"] is True
