"""Removing the media store's files that nothing uses any more.

A generated image is saved (fsync'd) before the transaction that writes its post, and an upload before
its job's: a kill -9 between the two leaves a file no row names, and the job, run again, saves another.
Other leftovers: a temporary file of a write cut short, an upload whose job went with its account, a
purged post's file whose delete did not happen after the commit. Derived files (thumbnails, collages)
are never named by a row; they are made again when needed.

The sweep takes the paths every row names (posts' images, jobs' starting pictures), then walks the
store's own folders and removes what no row names and what has not been written or used for
MEDIA_ORPHAN_AGE_HOURS. The age is what keeps a file safe while its row is on its way: the writer
saves the file and commits within seconds, and a file used again has its time refreshed
(MediaStore.keep), so a row committed after the paths were read names a file too young to go.

Only the store's own layout is walked (`ab/<sha256>.<ext>`, `thumbs/ab/…`, `collages/ab/…`); anything
else under MEDIA_DIR (an operator's `previews/`, a file put there by hand) is left alone, and no
symbolic link is followed or removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.gen.media import MediaStore
from core.models import GenerationJob, Post

log = logging.getLogger(__name__)

CHUNK = 5000  # rows read per statement: short reads, never one long transaction over every post
CACHES = ("thumbs", "collages")
# A thumbnail or collage costs a decode of full-size images to make again: kept while used this week.
CACHE_AGE = timedelta(days=7)
TEMPORARY = ".tmp-"  # MediaStore.write_named's files before their rename
_FOLDER = re.compile(r"[0-9a-f]{2}")


@dataclass(slots=True)
class Swept:
    removed: int = 0  # files no row names
    expired: int = 0  # thumbnails and collages not used for CACHE_AGE
    kept: int = 0
    failed: int = 0  # files or folders that could not be read or removed
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"media sweep: {self.removed} unused files and {self.expired} old thumbnails/collages removed, "
            f"{self.kept} kept, {self.failed} unreadable, in {self.seconds:.1f} s"
        )


async def sweep(
    sessions: async_sessionmaker[AsyncSession], media: MediaStore, age: timedelta, now: float | None = None
) -> Swept:
    """`now`: seconds since the epoch, as file times are (a test moves it on)."""
    started = time.monotonic()
    used = await referenced(sessions)
    at = time.time() if now is None else now
    before = at - age.total_seconds()
    cache_before = at - max(age, CACHE_AGE).total_seconds()
    swept = await asyncio.to_thread(_sweep_store, media.root, used, before, cache_before)
    swept.seconds = time.monotonic() - started
    return swept


async def referenced(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """Every path a row names, read in chunks along the primary keys."""
    used: set[str] = set()
    for key, path in ((Post.id, Post.image_path), (GenerationJob.id, GenerationJob.source_path)):
        last = 0
        while True:
            async with sessions() as session:
                rows = (
                    await session.execute(
                        select(key, path).where(key > last, path.is_not(None)).order_by(key).limit(CHUNK)
                    )
                ).all()
            used.update(found for _, found in rows if found is not None)
            if len(rows) < CHUNK:
                break
            last = rows[-1][0]
    return used


def _sweep_store(root: os.PathLike[str], used: set[str], before: float, cache_before: float) -> Swept:
    """Blocking: the walk and the removals, in a thread."""
    swept = Swept()
    for top in _folders(os.fspath(root), swept):
        if _FOLDER.fullmatch(top.name):
            _sweep_folder(top.path, top.name, used, before, before, swept)
        elif top.name in CACHES:
            for inner in _folders(top.path, swept):
                if _FOLDER.fullmatch(inner.name):
                    relative = f"{top.name}/{inner.name}"
                    _sweep_folder(inner.path, relative, used, cache_before, before, swept)
    return swept


def _folders(path: str, swept: Swept) -> Iterator[os.DirEntry[str]]:
    """The real folders in `path`, not links to folders (which may lead out of the store)."""
    for entry in _entries(path, swept):
        try:
            if entry.is_dir(follow_symlinks=False):
                yield entry
        except OSError:
            swept.failed += 1


def _entries(path: str, swept: Swept) -> Iterator[os.DirEntry[str]]:
    """One by one, as the folder is read: a folder of a million files is never one list."""
    try:
        with os.scandir(path) as entries:
            yield from entries
    except OSError as exc:
        log.warning("media sweep: cannot read %s: %s", path, exc)
        swept.failed += 1


def _sweep_folder(
    path: str, relative: str, used: set[str], before: float, temporary_before: float, swept: Swept
) -> None:
    cache = relative.split("/", 1)[0] in CACHES
    for entry in _entries(path, swept):
        try:
            if not entry.is_file(follow_symlinks=False):  # a link is neither followed nor removed
                continue
            name = f"{relative}/{entry.name}"
            # stat() here, at this file's turn, not when the walk began: a file saved again meanwhile is young.
            modified = entry.stat(follow_symlinks=False).st_mtime
            limit = temporary_before if entry.name.startswith(TEMPORARY) else before
            if name in used or modified >= limit:
                swept.kept += 1
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # removed by someone else meanwhile (a purge)
        except OSError as exc:
            log.warning("media sweep: cannot remove %s: %s", entry.path, exc)
            swept.failed += 1
            continue
        if cache and not entry.name.startswith(TEMPORARY):
            swept.expired += 1
        else:
            swept.removed += 1
