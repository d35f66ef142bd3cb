"""Revision 0009_creative on a database that already holds posts and jobs (SQLite, and PostgreSQL with
TEST_DATABASE_URL): the rows stay, the new columns read as "nothing yet", comments work, and a
downgrade gives back the previous schema with the rows."""

from __future__ import annotations

from sqlalchemy import text

from core.db import create_engine
from core.migrate import downgrade, upgrade
from tests.core.test_migrations import empty_url  # noqa: F401  (the fixture)

WHEN = "'2026-01-01 00:00:00'"
ROWS = (
    f"INSERT INTO people (id, handle, display_name, bio, created_at) VALUES (1, 'ada', 'Ada', '', {WHEN})",
    "INSERT INTO posts (id, author_id, prompt, image_path, width, height, seed, backend, model, visibility,"
    f" like_count, remix_count, hot, created_at) VALUES (1, 1, 'fox', 'a/b.png', 1, 1, 1, 'local', 'm', 'public',"
    f" 2, 0, 0.0, {WHEN})",
    "INSERT INTO generation_jobs (id, idempotency_key, person_id, prompt, seed, aspect, visibility, status,"
    f" attempts, not_before, created_at) VALUES (1, 'k1', 1, 'fox', 1, '1:1', 'public', 'done', 1, {WHEN}, {WHEN})",
)


async def test_the_creative_revision_keeps_posts_and_jobs_and_steps_back(empty_url: str) -> None:  # noqa: F811
    engine = create_engine(empty_url)
    try:
        await upgrade(engine, "0007")
        async with engine.begin() as conn:
            for statement in ROWS:
                await conn.execute(text(statement))
        await upgrade(engine, "0009_creative")
        async with engine.begin() as conn:
            post = (await conn.execute(text("SELECT like_count, comment_count, origin, lineage FROM posts"))).one()
            assert tuple(post) == (2, 0, None, None)
            job = (await conn.execute(text("SELECT status, source_path, source_kind FROM generation_jobs"))).one()
            assert tuple(job) == ("done", None, None)
            await conn.execute(
                text(f"INSERT INTO comments (post_id, author_id, text, created_at) VALUES (1, 1, 'nice', {WHEN})")
            )
            await conn.execute(
                text(
                    "INSERT INTO comment_threads (platform, chat_id, thread_id, post_id)"
                    " VALUES ('telegram', '-1', '9', 1)"
                )
            )
            await conn.execute(text("DELETE FROM posts WHERE id = 1"))  # comments and threads go with their post
            assert await conn.scalar(text("SELECT count(*) FROM comments")) == 0
            assert await conn.scalar(text("SELECT count(*) FROM comment_threads")) == 0
            await conn.execute(text(ROWS[1]))
        await downgrade(engine, "0007")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM posts")) == 1
            assert await conn.scalar(text("SELECT count(*) FROM generation_jobs")) == 1
        await upgrade(engine)
    finally:
        await engine.dispose()
