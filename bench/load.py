"""Put a synthetic network into a database, fast: executemany in big batches on SQLite, COPY on PostgreSQL.

Each database is built once and reused: a `bench_meta` table (the benchmark's own, not in the app's
models) records the shape it was built for and the clock it was built at. A half-built database has no
`complete` row, so it is never reused. Reuse shifts post times to the present (see `catch_up`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import asyncpg
from sqlalchemy import Table, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.network import DAY, Network, Shape
from core.db import create_engine
from core.feed.ranking import DOUBLING_HOURS
from core.migrate import upgrade
from core.models import Base

META_DDL = "CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR(32) PRIMARY KEY, value TEXT NOT NULL)"
STALE_AFTER = 3600.0  # older data than this is moved to the present before measuring

Say = Callable[[str], None]


def describe(shape: Shape, seed: int) -> str:
    return json.dumps({"people": shape.people, "follows": shape.follows, "posts": shape.posts,
                       "likes": shape.likes, "days": shape.days, "seed": seed})  # fmt: skip


async def read_meta(conn: AsyncConnection) -> dict[str, str]:
    await conn.execute(text(META_DDL))
    return dict((await conn.execute(text("SELECT key, value FROM bench_meta"))).all())


async def write_meta(conn: AsyncConnection, values: dict[str, str]) -> None:
    await conn.execute(text(META_DDL))
    for key, value in values.items():
        await conn.execute(text("DELETE FROM bench_meta WHERE key = :k"), {"k": key})
        await conn.execute(text("INSERT INTO bench_meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value})


async def is_built(url: str, shape: Shape, seed: int) -> bool:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            meta = await read_meta(conn)
            if meta.get("complete") != "1" or meta.get("shape") != describe(shape, seed):
                return False
            # Rows can vanish after the build (a migration once cascaded a table rebuild into every child row).
            built = json.loads(meta["counts"])
            for table in ("posts", "follows"):
                if await conn.scalar(text(f"SELECT count(*) FROM {table}")) != built[table]:
                    return False
    finally:
        await engine.dispose()
    return True


async def catch_up(engine: AsyncEngine, say: Say) -> None:
    """Move every post forward by the time since the build, so "the last 24 hours" still holds posts.

    The hot score is linear in the creation time, so adding the same shift to it keeps it exact.
    """
    async with engine.begin() as conn:
        built = datetime.fromisoformat((await read_meta(conn))["now"])
        shift = int(datetime.now(UTC).timestamp() - built.timestamp())
        if shift < STALE_AFTER:
            return
        started = time.perf_counter()
        bump = shift / (DOUBLING_HOURS * 3600)
        if conn.dialect.name == "sqlite":
            # Keep SQLAlchemy's text format, "YYYY-MM-DD HH:MM:SS.ffffff", so comparisons stay textual-exact.
            moved = f"datetime(substr(created_at, 1, 19), '+{shift} seconds') || substr(created_at, 20)"
        else:
            moved = f"created_at + interval '{shift} seconds'"
        await conn.execute(text(f"UPDATE posts SET created_at = {moved}, hot = hot + :bump"), {"bump": bump})
        now = datetime.fromtimestamp(built.timestamp() + shift, UTC)
        await write_meta(conn, {"now": now.isoformat()})
    say(f"  moved posts {shift / DAY:.2f} days forward to the present in {time.perf_counter() - started:.1f} s")


async def build_sqlite(path: Path, network: Network, say: Say) -> None:
    """Build into a side file and rename it at the end, so a cached file is always a whole one."""
    building = path.with_name(path.name + ".building")
    for leftover in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
        leftover.unlink(missing_ok=True)
    engine = create_engine(f"sqlite+aiosqlite:///{building}")
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            # Only while loading: no fsyncs, no foreign key checks (the generator is consistent), a big cache.
            for pragma in ("synchronous=OFF", "foreign_keys=OFF", "cache_size=-262144"):
                await conn.exec_driver_sql(f"PRAGMA {pragma}")
            for name, columns, batches in network.tables():
                started, count = time.perf_counter(), 0
                table: Table = Base.metadata.tables[name]
                for batch in batches:
                    await conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in batch])
                    count += len(batch)
                await conn.commit()
                say(f"  {name}: {count:,} rows in {time.perf_counter() - started:.1f} s")
            await write_meta(conn, _finished_meta(network))
            await conn.commit()
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await engine.dispose()
    building.replace(path)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def recreate_pg_database(server_url: str, name: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


async def drop_pg_database(server_url: str, name: str) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def pg_database_exists(server_url: str, name: str) -> bool:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    finally:
        await admin.dispose()
    return found is not None


async def build_postgres(url: str, network: Network, say: Say) -> None:
    """`url` names a fresh, empty database; the schema comes from the app's migrations."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            # Skip the foreign key triggers while loading (superuser only; otherwise they just run).
            with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                await conn.execute("SET session_replication_role = replica")
            for name, columns, batches in network.tables():
                started = time.perf_counter()
                status = await conn.copy_records_to_table(name, records=chain.from_iterable(batches), columns=columns)
                say(f"  {name}: {status.split()[-1]} rows in {time.perf_counter() - started:.1f} s")
            for name in ("people", "identities", "posts"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
                )
            started = time.perf_counter()
            # What autovacuum would soon do on a live server: statistics, and a visibility map for index-only scans.
            await conn.execute("VACUUM ANALYZE")
            say(f"  vacuum analyze in {time.perf_counter() - started:.1f} s")
        finally:
            await conn.close()
        async with engine.begin() as sa_conn:
            await write_meta(sa_conn, _finished_meta(network))
    finally:
        await engine.dispose()


def _finished_meta(network: Network) -> dict[str, str]:
    counts = {"people": network.shape.people, "follows": len(network.follows), "posts": network.shape.posts,
              "likes": sum(network.like_counts)}  # fmt: skip
    return {"shape": describe(network.shape, network.seed), "counts": json.dumps(counts),
            "now": network.now.isoformat(), "complete": "1"}  # fmt: skip


async def counts(engine: AsyncEngine) -> dict[str, int]:
    """How many rows of each kind the build made (the shape is a target; caps can trim a little)."""
    async with engine.begin() as conn:
        built: dict[str, int] = json.loads((await read_meta(conn))["counts"])
    return built
