"""Count the Kubernetes API requests a process makes (loaded via PYTHONPATH by the benchmarks only).

Active only when BENCH_API_COUNTS names a file. Wraps the two HTTP clients the
operator uses — urllib3 (its own calls, controller/apiserver.py: gets, lists,
creates, patches) and aiohttp (Kopf: watch streams, its own patches, events) —
and counts each request by method and resource path (names, namespaces and query
strings stripped), writing the counts to the file once a second and at exit.
A watch is one request however long it streams. Counting at the client is the
honest option here: the apiserver's ``apiserver_request_total`` has no user label,
and the operator is the only process with this counter loaded.
"""

import os

_PATH = os.environ.get("BENCH_API_COUNTS")

if _PATH:
    import atexit
    import contextlib
    import json
    import re
    import threading
    import time

    _counts: dict = {}
    _lock = threading.Lock()
    _started = time.time()

    def _key(method, url):
        path = str(url).split("?", 1)[0]
        path = re.sub(r"^https?://[^/]+", "", path)
        path = re.sub(r"/namespaces/[^/]+", "/namespaces/*", path)
        parts = path.strip("/").split("/")
        # .../<plural>/<name>[/status] → .../<plural>/{name}[/status]
        for i, part in enumerate(parts):
            if part in (
                "migrationruns",
                "jobs",
                "pods",
                "events",
                "deployments",
                "statefulsets",
                "leases",
                "kopfpeerings",
                "clusterkopfpeerings",
            ) and i + 1 < len(parts):
                parts[i + 1] = "{name}"
        watch = "watch=" in str(url)
        return f"{method.upper()}{' (watch)' if watch else ''} /" + "/".join(parts)

    def _count(method, url):
        key = _key(method, url)
        with _lock:
            _counts[key] = _counts.get(key, 0) + 1

    def _dump():
        with _lock:
            data = {"started": _started, "at": time.time(), "total": sum(_counts.values()), "requests": dict(_counts)}
        tmp = _PATH + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, _PATH)

    def _loop():
        while True:
            time.sleep(1.0)
            with contextlib.suppress(Exception):  # a failed dump is retried next second
                _dump()

    try:
        import urllib3.connectionpool as _cp

        _orig_urlopen = _cp.HTTPConnectionPool.urlopen

        def urlopen(self, method, url, *args, **kwargs):
            _count(method, url)  # a retry or redirect re-enters here: it is a request too
            return _orig_urlopen(self, method, url, *args, **kwargs)

        _cp.HTTPConnectionPool.urlopen = urlopen
    except Exception:  # noqa: BLE001
        pass

    try:
        import aiohttp as _aiohttp

        _orig_request = _aiohttp.ClientSession._request

        async def _request(self, method, str_or_url, *args, **kwargs):
            params = kwargs.get("params") or {}
            url = str(str_or_url) + ("?watch=true" if isinstance(params, dict) and params.get("watch") else "")
            _count(method, url)
            return await _orig_request(self, method, str_or_url, *args, **kwargs)

        _aiohttp.ClientSession._request = _request
    except Exception:  # noqa: BLE001
        pass

    threading.Thread(target=_loop, name="bench-apicount", daemon=True).start()
    atexit.register(_dump)

_TRACE = os.environ.get("BENCH_TRACEMALLOC")

if _TRACE:
    # Memory profile (issue 18): tracemalloc from the start; every 5 s, when the traced total is the
    # highest so far, the top allocation sites (file:line) and the totals are written to the file.
    import json as _json
    import threading as _threading
    import time as _time
    import tracemalloc as _tracemalloc

    _tracemalloc.start(1)

    def _trace_loop():
        best = 0
        while True:
            _time.sleep(5.0)
            try:
                current, peak = _tracemalloc.get_traced_memory()
                if current < best:
                    continue
                best = current
                stats = _tracemalloc.take_snapshot().statistics("lineno")[:25]
                top = [
                    {
                        "where": f"{s.traceback[0].filename.split('site-packages/')[-1]}:{s.traceback[0].lineno}",
                        "kib": round(s.size / 1024, 1),
                        "count": s.count,
                    }
                    for s in stats
                ]
                data = {"current_kib": round(current / 1024), "peak_kib": round(peak / 1024), "top": top}
                with open(_TRACE + ".tmp", "w") as fh:
                    _json.dump(data, fh, indent=1)
                os.replace(_TRACE + ".tmp", _TRACE)
            except Exception:  # noqa: BLE001 - a failed sample is retried next time
                pass

    _threading.Thread(target=_trace_loop, name="bench-tracemalloc", daemon=True).start()
