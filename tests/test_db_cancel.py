"""A write whose caller is cancelled while it commits: the write is kept (the body ran to its end
on the database thread) and the cancel reaches the caller afterwards, as the same cancellation,
so the anyio cancel scope that issued it absorbs it (the MCP SDK's per-request scope is one)."""

from __future__ import annotations

import asyncio

import anyio

from agent_tools.db import Database
from commits import hold_the_commit


async def test_a_cancel_landing_as_a_write_commits_keeps_the_write_and_stays_the_scopes_own(tmp_path):
    db = await Database.open(tmp_path / "v.db")
    trace, committing, go = hold_the_commit("INSERT INTO marks")
    continued = False
    try:
        await db.run(lambda conn: conn.execute("CREATE TABLE marks (n INTEGER)"))
        await db.run(lambda conn: conn.set_trace_callback(trace))

        async def cancel_while_committing(scope: anyio.CancelScope) -> None:
            await anyio.to_thread.run_sync(committing.wait)
            scope.cancel()
            await anyio.sleep(0)  # the caller sees the cancel while the COMMIT is still held
            go.set()

        async with anyio.create_task_group() as group:
            with anyio.CancelScope() as scope:
                group.start_soon(cancel_while_committing, scope)
                await db.run(lambda conn: conn.execute("INSERT INTO marks VALUES (1)"))
                await anyio.sleep(0)  # the cancel is delivered here, at the next await
                continued = True
        rows = await db.run(lambda conn: [tuple(row) for row in conn.execute("SELECT n FROM marks")])
    finally:
        go.set()
        await db.close()
    assert scope.cancelled_caught and not continued
    assert asyncio.current_task().cancelling() == 0  # no cancel request left over for anyone else
    assert rows == [(1,)]
