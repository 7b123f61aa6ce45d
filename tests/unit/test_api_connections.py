"""Kopf's session to the API holds a bounded number of connections (issue 18, :mod:`controller.connecting`).

Against a real HTTP server on localhost: a burst of requests larger than the pool opens no more
connections than the pool allows, and every request is still answered (the rest wait their turn)."""

from __future__ import annotations

import asyncio

import kopf
from aiohttp import web

from alembic_operator.controller import connecting


async def _burst(*, limit: int, requests: int) -> tuple[int, int, list[int]]:
    sockets: set[int] = set()
    busy = 0
    most_busy = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal busy, most_busy
        transport = request.transport
        assert transport is not None
        sockets.add(id(transport))
        busy += 1
        most_busy = max(most_busy, busy)
        await asyncio.sleep(0.05)
        busy -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    info = kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}", scheme="Bearer", token="t")
    session = connecting.session(info, limit=limit)
    try:

        async def get() -> int:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                return response.status

        statuses = await asyncio.gather(*(get() for _ in range(requests)))
    finally:
        await session.close()
        await runner.cleanup()
    return len(sockets), most_busy, list(statuses)


def test_a_burst_of_requests_opens_no_more_connections_than_the_pool_and_all_are_answered() -> None:
    opened, most_busy, statuses = asyncio.run(_burst(limit=3, requests=40))
    assert statuses == [200] * 40
    assert opened <= 3
    assert most_busy == 3  # the pool was used in full, not serialised to one


def test_the_pool_leaves_room_for_each_watched_namespaces_streams() -> None:
    cluster_wide = connecting.pool_size(namespaces=0)
    assert cluster_wide == connecting.pool_size(namespaces=1)
    assert connecting.pool_size(namespaces=10) - cluster_wide == 9 * connecting.WATCHES_PER_SCOPE
    assert cluster_wide - connecting.WATCHES_PER_SCOPE == connecting.FOR_REQUESTS


def test_the_session_sends_the_credentials_kopf_would() -> None:
    async def headers() -> dict[str, str]:
        info = kopf.ConnectionInfo(server="https://example.invalid", scheme="Bearer", token="abc")
        session = connecting.session(info, limit=2)
        try:
            return dict(session.headers)
        finally:
            await session.close()

    assert asyncio.run(headers())["Authorization"] == "Bearer abc"
