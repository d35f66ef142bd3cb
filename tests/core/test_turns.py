"""A chat's updates one at a time, in arrival order, across the deployment (core.turns), each once;
on PostgreSQL between two cores on their own engines, as two front-end processes are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from core import turns
from core.app import Core, bootstrap
from core.config import Settings
from tests.processes import needs_postgres


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[Core]:
    """A second core on its own engine: another front-end process, as far as locks can tell."""
    app = await bootstrap(settings)
    yield app
    await app.aclose()


async def handle(core: Core, log: list[str], update: str, chat: str, seconds: float = 0.05) -> bool:
    async with core.turns.arrival("test", update, chat) as fresh:
        if fresh:
            log.append(f"start {update}")
            await asyncio.sleep(seconds)
            log.append(f"end {update}")
        return fresh


async def test_a_chats_updates_run_one_at_a_time_in_arrival_order_and_other_chats_meanwhile(core: Core) -> None:
    log: list[str] = []
    tasks = [asyncio.create_task(handle(core, log, str(n), "c1")) for n in (1, 2, 3)]
    other = asyncio.create_task(handle(core, log, "9", "c2"))
    assert await asyncio.gather(*tasks, other) == [True] * 4
    mine = [line for line in log if not line.endswith(" 9")]
    assert mine == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]
    assert log.index("start 9") < log.index("end 1")  # another chat did not wait
    assert core.turns._local == {}  # nothing kept for chats with no update in hand


async def test_an_update_seen_before_is_not_handled_again(core: Core) -> None:
    log: list[str] = []
    assert await handle(core, log, "7", "c1")
    assert not await handle(core, log, "7", "c1")
    assert not await handle(core, log, "7", "c2")  # the id is the platform's, whatever the chat
    assert log == ["start 7", "end 7"]


async def test_handing_over_lets_the_chats_next_update_start_while_replies_go_out(core: Core) -> None:
    log: list[str] = []
    sending = asyncio.Event()

    async def answered_then_slow_send() -> None:
        async with core.turns.arrival("test", "1", "c1"):
            log.append("core answered 1")
            await turns.hand_over()
            await sending.wait()  # a hung send, after the hand-over
            log.append("sent 1")

    first = asyncio.create_task(answered_then_slow_send())
    await asyncio.sleep(0)
    assert await asyncio.wait_for(handle(core, log, "2", "c1"), 5)
    sending.set()
    await first
    assert log == ["core answered 1", "start 2", "end 2", "sent 1"]


async def test_recording_an_update_and_taking_its_turn_costs_what_recording_did(other: Core) -> None:
    """SQLite: the one INSERT of before. PostgreSQL: one statement records and locks, one unlocks
    (and no pooled connection or transaction, as the INSERT had)."""
    core = other  # not started: no background work to count
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async with core.turns.arrival("count", "0", "c0"):  # the shared connection is opened once
        pass
    event.listen(core.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with core.turns.arrival("count", "1", "c1") as fresh:
            assert fresh
    finally:
        event.remove(core.engine.sync_engine, "before_cursor_execute", seen)
    assert len(statements) == (2 if core.engine.dialect.name == "postgresql" else 1), statements


@needs_postgres
async def test_two_processes_take_turns_on_one_chat_and_not_on_two(core: Core, other: Core) -> None:
    log: list[str] = []
    first = asyncio.create_task(handle(core, log, "1", "c1", seconds=0.5))
    await asyncio.sleep(0.1)
    elsewhere = await asyncio.wait_for(handle(other, log, "3", "c2"), 0.3)  # another chat: no wait
    second = await handle(other, log, "2", "c1")
    assert elsewhere and second and await first
    assert log == ["start 1", "start 3", "end 3", "end 1", "start 2", "end 2"]


@needs_postgres
async def test_a_dead_processs_turn_passes_to_the_waiting_one(core: Core, other: Core) -> None:
    log: list[str] = []
    holding = asyncio.Event()

    async def dies_holding_the_chat() -> None:
        async with core.turns.arrival("test", "1", "c1"):
            holding.set()
            await asyncio.sleep(60)

    doomed = asyncio.create_task(dies_holding_the_chat())
    await holding.wait()
    waiting = asyncio.create_task(handle(other, log, "2", "c1"))
    await asyncio.sleep(0.3)
    assert log == []  # waits for the holder
    assert core.turns._conn is not None
    await core.turns._conn.invalidate()  # its connection dies as with the process: PostgreSQL frees the lock
    assert await asyncio.wait_for(waiting, 5)
    assert log == ["start 2", "end 2"]
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
