"""The media store: content-addressed, atomic writes, and no way out of its root."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from core.gen.media import MediaPathError, MediaStore


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_save_names_the_file_by_its_content(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    data = b"\x89PNG fake image bytes"
    relative = await store.save(data, "png")
    digest = hashlib.sha256(data).hexdigest()
    assert relative == f"{digest[:2]}/{digest}.png"
    assert store.path(relative).read_bytes() == data
    assert store.path(relative) == (tmp_path / "media" / relative).resolve()


async def test_same_bytes_give_the_same_path_and_one_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    first = await store.save(b"same", "png")
    second = await store.save(b"same", "png")
    other = await store.save(b"different", "png")
    assert first == second != other
    assert len(files(tmp_path)) == 2


async def test_concurrent_saves_of_the_same_bytes_leave_one_whole_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    data = os.urandom(256 * 1024)
    paths = await asyncio.gather(*(store.save(data, "png") for _ in range(8)))
    assert len(set(paths)) == 1
    assert files(tmp_path) == [store.path(paths[0])]  # no temporary files left behind
    assert store.path(paths[0]).read_bytes() == data


async def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MediaStore(tmp_path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await store.save(b"half an image", "png")
    assert files(tmp_path) == []
    monkeypatch.undo()
    relative = await store.save(b"half an image", "png")  # and a later try succeeds
    assert store.path(relative).read_bytes() == b"half an image"


@pytest.mark.parametrize(
    "relative", ["../x", "../../etc/passwd", "ab/../../x", "/etc/passwd", "/tmp/elsewhere.png", "", ".", "ab/.."]
)
def test_paths_outside_the_root_are_refused(tmp_path: Path, relative: str) -> None:
    store = MediaStore(tmp_path / "media")
    with pytest.raises(MediaPathError):
        store.path(relative)


async def test_delete_refuses_outside_paths_and_keeps_the_file(tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    store = MediaStore(tmp_path / "media")
    with pytest.raises(MediaPathError):
        await store.delete("../precious.txt")
    with pytest.raises(MediaPathError):
        await store.delete(str(outside))
    assert outside.read_text() == "keep me"


async def test_delete_removes_a_stored_file_and_ignores_a_missing_one(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    relative = await store.save(b"bytes", "png")
    await store.delete(relative)
    assert not store.path(relative).exists()
    await store.delete(relative)  # already gone: no error


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    store = MediaStore(root)
    with pytest.raises(MediaPathError):
        store.path("link/file.png")


async def test_a_stored_file_is_where_resolving_its_path_leads(tmp_path: Path) -> None:
    """Plain names skip resolve() (core.gen.media); the answer must be the same, through a symlinked root too."""
    (tmp_path / "real").mkdir()
    (tmp_path / "media").symlink_to(tmp_path / "real")
    store = MediaStore(tmp_path / "media")
    relative = await store.save(b"bytes", "png")
    assert store.path(relative) == (tmp_path / "media" / relative).resolve() == tmp_path / "real" / relative
    assert store.path(relative).read_bytes() == b"bytes"
    (store.root / "inner").mkdir()
    (store.root / "inner" / "up").symlink_to(store.root)  # a symlink that stays inside: resolved, allowed
    assert store.path(f"inner/up/{relative}") == store.root / relative


@pytest.mark.parametrize("extension", ["png/../../x", "", "p.ng", "../png"])
async def test_bad_extensions_are_refused(tmp_path: Path, extension: str) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(MediaPathError):
        await store.save(b"data", extension)
    assert files(tmp_path) == []


async def test_bytes_saved_again_are_not_rewritten_but_marked_recent(tmp_path: Path) -> None:
    """The media sweep (core.media_sweep) goes by a file's time: bytes saved again for a new row must
    not look abandoned while that row commits."""
    store = MediaStore(tmp_path)
    relative = await store.save(b"the same upload twice", "png")
    target = store.path(relative)
    os.utime(target, (1_000_000_000, 1_000_000_000))
    inode = target.stat().st_ino
    assert await store.save(b"the same upload twice", "png") == relative
    assert target.stat().st_ino == inode  # not written again
    assert target.stat().st_mtime > 1_000_000_000
