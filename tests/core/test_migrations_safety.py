"""Revision 0008_safety on a database with data: existing posts stay visible and public places
keep listing them; down and up again keeps the rows. SQLite, and PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import create_engine
from core.feed.ranking import hot_score, top_posts
from core.migrate import downgrade, upgrade
from core.models import Person, Post, utcnow
from tests.core.test_migrations import empty_url  # noqa: F401  (fixture)

REVISION = "0008_safety"


async def test_existing_posts_and_people_come_through_the_safety_migration_visible(
    empty_url: str,  # noqa: F811
) -> None:
    engine = create_engine(empty_url)
    now = utcnow()
    try:
        await upgrade(engine, "0007")
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO people (handle, display_name, bio, created_at) VALUES ('ada', 'Ada', '', :at)"),
                {"at": now.replace(tzinfo=None)},
            )
            await conn.execute(
                text(
                    "INSERT INTO posts (author_id, prompt, image_path, width, height, seed, backend, model,"
                    " visibility, like_count, remix_count, hot, created_at)"
                    " SELECT id, 'fox', 'a/b.png', 1, 1, 1, 'local', 'm', 'public', 0, 0, :hot, :at FROM people"
                ),
                {"hot": hot_score(0, now), "at": now.replace(tzinfo=None)},
            )
        await upgrade(engine, "head")
        async with AsyncSession(engine) as session:
            [post] = list(await session.scalars(select(Post)))
            assert (post.status, post.deleted_at, post.author_private) == ("visible", None, False)
            person = await session.scalar(select(Person))
            assert person is not None and not person.private and person.banned_until is None
            assert [v.post.id for v in await top_posts(session)] == [post.id]
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT private, promoted_admin, banned_until FROM people"))).one()
            assert (bool(row[0]), bool(row[1]), row[2]) == (False, False, None)
        await downgrade(engine, "0007")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM posts")) == 1
        await upgrade(engine, "head")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT status FROM posts")) == "visible"
            assert await conn.scalar(text("SELECT count(*) FROM audit_log")) == 0
    finally:
        await engine.dispose()
