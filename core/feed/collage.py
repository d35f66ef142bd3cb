"""The digest picture: a grid of post images, each labelled with its author's handle and number."""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from core.gen.media import MediaStore

TILE = 360
LABEL = 44
GAP = 8
BACKGROUND = (18, 18, 24)


@dataclass(frozen=True, slots=True)
class Tile:
    image: Path
    label: str  # e.g. "#12 @bob"


def grid(count: int) -> tuple[int, int]:
    """(columns, rows): up to three across, as square as the count allows."""
    columns = 1 if count == 1 else 2 if count in (2, 4) else 3
    return columns, -(-count // columns)


def collage_size(count: int) -> tuple[int, int]:
    columns, rows = grid(count)
    return GAP + columns * (TILE + GAP), GAP + rows * (TILE + LABEL + GAP)


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _thumbnail(path: Path) -> Image.Image:
    with Image.open(path) as source:
        source.draft("RGB", (TILE, TILE))  # JPEG decodes at a fraction of the size; PNG ignores it
        image = source.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((TILE, TILE), Image.Resampling.BILINEAR)


def render(tiles: list[Tile]) -> bytes:
    """JPEG bytes of the grid."""
    canvas = Image.new("RGB", collage_size(len(tiles)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    columns, _ = grid(len(tiles))
    for index, tile in enumerate(tiles):
        x = GAP + (index % columns) * (TILE + GAP)
        y = GAP + (index // columns) * (TILE + LABEL + GAP)
        canvas.paste(_thumbnail(tile.image), (x, y))
        draw.text((x + 10, y + TILE + LABEL // 2), tile.label, fill=(235, 235, 240), font=_font(24), anchor="lm")
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _cached_thumbnail(media: MediaStore, source: Path) -> Path:
    """A square JPEG thumbnail per image, made once: decoding full-size PNGs is most of the cost."""
    key = hashlib.sha256(str(source).encode()).hexdigest()
    name = f"thumbs/{key[:2]}/{key}.jpg"
    if not media.keep(name):
        out = io.BytesIO()
        _thumbnail(source).save(out, format="JPEG", quality=90)
        media.write_named(name, out.getvalue())
    return media.path(name)


def render_cached(media: MediaStore, tiles: list[Tile]) -> bytes:
    return render([Tile(_cached_thumbnail(media, t.image), t.label) for t in tiles])


async def collage_file(media: MediaStore, tiles: list[Tile]) -> Path:
    """Render once per distinct set of tiles: many people share the same best posts."""
    key = hashlib.sha256("\0".join(f"{t.image}|{t.label}" for t in tiles).encode()).hexdigest()
    name = f"collages/{key[:2]}/{key}.jpg"
    if not media.keep(name):
        data = await asyncio.to_thread(render_cached, media, tiles)
        await media.save_as(name, data)
    return media.path(name)
