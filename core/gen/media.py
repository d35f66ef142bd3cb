"""The media store: image files under MEDIA_DIR, named by their content, written atomically."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from pathlib import Path

# A file used again (the same bytes saved, a cached thumbnail or collage shown) gets a fresh modification
# time once it is older than this, because core.media_sweep removes only files older than
# MEDIA_ORPHAN_AGE_HOURS (at least an hour): one reused now is then never swept before its row commits.
REFRESH_AFTER = 600.0


class MediaPathError(ValueError):
    """A media path that points outside the store."""


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def save(self, data: bytes, extension: str) -> str:
        """Write the bytes once and return their path relative to the store."""
        return await asyncio.to_thread(self.save_blocking, data, extension)

    @staticmethod
    def name_for(data: bytes, extension: str) -> str:
        """Where `save` puts these bytes (files are named by their content)."""
        if not extension.isalnum():
            raise MediaPathError(f"bad extension {extension!r}")
        digest = hashlib.sha256(data).hexdigest()
        return f"{digest[:2]}/{digest}.{extension}"

    def save_blocking(self, data: bytes, extension: str) -> str:
        """`save` in the calling thread (call from a thread)."""
        relative = self.name_for(data, extension)
        if not self.keep(relative):
            self.write_named(relative, data)
        return relative

    def keep(self, relative: str) -> bool:
        """Whether the file exists; one about to be used again is marked recent, for the sweeper
        (blocking: call from a thread)."""
        target = self.path(relative)
        try:
            modified = target.stat().st_mtime
            if time.time() - modified > REFRESH_AFTER:
                os.utime(target)
        except FileNotFoundError:
            return False
        return True

    async def save_as(self, relative: str, data: bytes) -> None:
        """Write a derived file (a collage, say) under a name of the caller's choosing."""
        await asyncio.to_thread(self.write_named, relative, data)

    def write_named(self, relative: str, data: bytes) -> None:
        """Atomically write `data` at `relative` (blocking; call from a thread)."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same folder, then a rename: readers never see half an image.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses anything that would leave the store."""
        parts = relative.split("/")
        if not {"", ".", ".."} & set(parts):
            # Plain names below the already resolved root, none of them a symlink: that is already where
            # resolve() would lead. Resolving the whole absolute path costs a stat per component of the
            # root too, about 70 us a card, a fifth of a /feed (bench/README.md).
            here = str(self.root)
            for part in parts:
                here = os.path.join(here, part)
                if os.path.islink(here):
                    break
            else:
                return Path(here)
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root) or candidate == self.root:
            raise MediaPathError(f"path outside the media store: {relative!r}")
        return candidate

    async def delete(self, relative: str) -> None:
        await asyncio.to_thread(self.path(relative).unlink, missing_ok=True)
