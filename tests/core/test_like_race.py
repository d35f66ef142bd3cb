"""Concurrent toggles of one person's like: every reply tells a state the rows really had."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import func, select

from core.models import Like, Post
from tests.support import Chat

REPLY = re.compile(r"(❤️ You liked|You took back your like on) #\d+ \((\d+) ❤️\)")


async def test_concurrent_presses_of_one_person_never_answer_an_impossible_count(chat: Chat) -> None:
    post_id = await chat.post("alice")
    for _round in range(6):
        replies = await asyncio.gather(*(chat.say("bob", f"/like {post_id}") for _ in range(8)))
        for [reply] in replies:
            found = REPLY.fullmatch(reply.text)
            assert found is not None, reply.text
            liked, count = found.group(1).startswith("❤️"), int(found.group(2))
            # Bob is the only one who likes: his like and the count go together.
            assert count == (1 if liked else 0), reply.text
    async with chat.core.sessions() as session:
        post = await session.get(Post, post_id)
        rows = await session.scalar(select(func.count()).select_from(Like).where(Like.post_id == post_id))
    assert post is not None and post.like_count == rows
