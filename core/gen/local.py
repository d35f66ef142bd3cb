"""The built-in offline image generator: abstract art, deterministic for (prompt, seed).

It needs no network and no model. The prompt picks the palette (colour and mood words) and the
motif (stars, waves, trees, buildings, ...); the seed and the rest of the prompt place the shapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import random
import re
from collections.abc import Callable
from typing import ClassVar

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps
from PIL.PngImagePlugin import PngInfo

from core.gen.backend import GeneratedImage, ImageRequest

RGB = tuple[int, int, int]

COLOUR_WORDS: dict[str, RGB] = {
    "red": (200, 40, 40),
    "crimson": (170, 20, 50),
    "orange": (240, 140, 30),
    "yellow": (245, 210, 50),
    "gold": (212, 175, 55),
    "green": (50, 160, 70),
    "forest": (30, 100, 50),
    "teal": (20, 140, 140),
    "blue": (40, 90, 210),
    "ocean": (20, 80, 150),
    "sea": (30, 110, 170),
    "sky": (120, 180, 240),
    "purple": (130, 60, 170),
    "violet": (150, 90, 220),
    "pink": (240, 120, 170),
    "brown": (120, 80, 40),
    "black": (15, 15, 20),
    "white": (240, 240, 245),
    "grey": (128, 128, 135),
    "gray": (128, 128, 135),
    "snow": (235, 240, 250),
    "ice": (190, 225, 245),
    "fire": (250, 90, 20),
    "sunset": (250, 120, 80),
    "night": (15, 20, 60),
    "desert": (220, 180, 120),
    "neon": (60, 255, 200),
    "fox": (220, 110, 40),
}

MOODS: dict[str, tuple[float, float]] = {  # word -> (brightness, saturation) multipliers
    "dark": (0.45, 0.9),
    "gloomy": (0.5, 0.6),
    "night": (0.5, 0.9),
    "bright": (1.25, 1.1),
    "sunny": (1.2, 1.15),
    "pastel": (1.2, 0.5),
    "vivid": (1.0, 1.4),
    "calm": (1.05, 0.7),
    "misty": (1.1, 0.4),
    "moody": (0.6, 0.8),
}


def _words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+", prompt.lower())


def _adjust(colour: RGB, brightness: float, saturation: float) -> RGB:
    grey = sum(colour) / 3
    channels = (grey + (c - grey) * saturation for c in colour)
    return tuple(max(0, min(255, int(c * brightness))) for c in channels)  # type: ignore[return-value]


def palette(prompt: str, rng: random.Random) -> list[RGB]:
    words = _words(prompt)
    named = [COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS]
    # Words that name no colour still shape the palette, so different prompts look different.
    digest = hashlib.sha256(" ".join(words).encode()).digest()
    derived = [(digest[i], digest[i + 1], digest[i + 2]) for i in range(0, 15, 3)]
    if named:
        # Pull the word-derived colours most of the way to the named ones, so "red" reads as red.
        tint = tuple(sum(c[i] for c in named) // len(named) for i in range(3))
        derived = [tuple(int(d * 0.25 + t * 0.75) for d, t in zip(c, tint, strict=True)) for c in derived]  # type: ignore[misc]
    colours = (named + derived)[:5]
    brightness, saturation = 1.0, 1.0
    for word in words:
        if word in MOODS:
            brightness, saturation = MOODS[word]
    rng.shuffle(colours)
    return [_adjust(c, brightness, saturation) for c in colours]


Painter = Callable[[ImageDraw.ImageDraw, random.Random, list[RGB], int, int], None]


def _stars(draw: ImageDraw.ImageDraw, rng: random.Random, colours: list[RGB], w: int, h: int) -> None:
    for _ in range(220):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.choice((1, 1, 2, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 240, rng.randrange(120, 255)))


def _waves(draw: ImageDraw.ImageDraw, rng: random.Random, colours: list[RGB], w: int, h: int) -> None:
    for band in range(7):
        base, amp, freq = h * (0.45 + band * 0.08), rng.uniform(10, 40), rng.uniform(2, 6)
        phase = rng.uniform(0, 6.28)
        points = [(x, base + amp * math.sin(freq * x / w * 6.28 + phase)) for x in range(0, w + 32, 32)]
        colour = colours[band % len(colours)]
        draw.polygon([*points, (w, h), (0, h)], fill=(*colour, 110))


def _trees(draw: ImageDraw.ImageDraw, rng: random.Random, colours: list[RGB], w: int, h: int) -> None:
    for _ in range(26):
        x, base, size = rng.randrange(w), rng.uniform(h * 0.55, h), rng.uniform(h * 0.1, h * 0.3)
        colour = colours[rng.randrange(len(colours))]
        draw.polygon([(x, base - size), (x - size / 3, base), (x + size / 3, base)], fill=(*colour, 200))


def _buildings(draw: ImageDraw.ImageDraw, rng: random.Random, colours: list[RGB], w: int, h: int) -> None:
    x = 0
    while x < w:
        width, top = rng.randrange(w // 16, w // 6), rng.uniform(h * 0.25, h * 0.8)
        colour = colours[rng.randrange(len(colours))]
        draw.rectangle((x, top, x + width, h), fill=(*_adjust(colour, 0.5, 0.6), 235))
        for wy in range(int(top) + 12, h - 12, 28):
            for wx in range(x + 8, x + width - 8, 22):
                if rng.random() < 0.45:
                    draw.rectangle((wx, wy, wx + 8, wy + 12), fill=(255, 225, 120, 220))
        x += width + rng.randrange(0, 12)


def _blobs(draw: ImageDraw.ImageDraw, rng: random.Random, colours: list[RGB], w: int, h: int) -> None:
    for _ in range(rng.randrange(7, 14)):
        cx, cy, r = rng.randrange(w), rng.randrange(h), rng.uniform(w * 0.05, w * 0.25)
        colour = colours[rng.randrange(len(colours))]
        if rng.random() < 0.6:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*colour, rng.randrange(90, 200)))
        else:
            sides = rng.randrange(3, 7)
            pts = [
                (cx + r * math.cos(6.28 * i / sides + r), cy + r * math.sin(6.28 * i / sides + r)) for i in range(sides)
            ]
            draw.polygon(pts, fill=(*colour, rng.randrange(90, 200)))


MOTIFS: dict[str, Painter] = {
    "space": _stars,
    "star": _stars,
    "stars": _stars,
    "night": _stars,
    "galaxy": _stars,
    "sea": _waves,
    "ocean": _waves,
    "wave": _waves,
    "waves": _waves,
    "lake": _waves,
    "river": _waves,
    "forest": _trees,
    "tree": _trees,
    "trees": _trees,
    "mountain": _trees,
    "mountains": _trees,
    "city": _buildings,
    "street": _buildings,
    "skyline": _buildings,
    "town": _buildings,
}


def motifs(prompt: str) -> list[Painter]:
    chosen: list[Painter] = []
    for word in _words(prompt):
        painter = MOTIFS.get(word)
        if painter and painter not in chosen:
            chosen.append(painter)
    return chosen or [_blobs]


def render(request: ImageRequest) -> Image.Image:
    w, h = request.width, request.height
    rng = random.Random(hashlib.sha256(f"{request.seed}\0{request.prompt}".encode()).digest())
    colours = palette(request.prompt, rng)
    # A soft background: a few random colours on a tiny grid, blown up smoothly (cheap at any size).
    grid = Image.new("RGB", (4, 4))
    grid.putdata([colours[rng.randrange(len(colours))] for _ in range(16)])
    canvas = grid.resize((w, h), Image.Resampling.BICUBIC).convert("RGBA")
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for painter in motifs(request.prompt):
        painter(draw, rng, colours, w, h)
    if rng.random() < 0.5:
        _blobs(draw, rng, colours, w, h)
    layer = layer.filter(ImageFilter.BoxBlur(1))
    return Image.alpha_composite(canvas, layer).convert("RGB")


# How much of the prompt's own picture is laid over a starting picture, and how strongly its named
# colours tint it: the start's composition stays recognisable, the prompt still shows.
ART_WEIGHT = 0.3
TINT_WEIGHT = 0.3


def transform(source: bytes, request: ImageRequest) -> Image.Image:
    """The starting picture carried into the request's size, recoloured by the prompt's colour and mood
    words, with the prompt's motifs laid over it."""
    with Image.open(io.BytesIO(source)) as opened:
        base = ImageOps.fit(opened.convert("RGB"), (request.width, request.height), Image.Resampling.LANCZOS)
    words = _words(request.prompt)
    brightness, saturation = 1.0, 1.0
    for word in words:
        if word in MOODS:
            brightness, saturation = MOODS[word]
    base = ImageEnhance.Brightness(ImageEnhance.Color(base).enhance(saturation)).enhance(brightness)
    named = [COLOUR_WORDS[w] for w in words if w in COLOUR_WORDS]
    if named:
        tint = tuple(sum(c[i] for c in named) // len(named) for i in range(3))
        base = Image.blend(base, Image.new("RGB", base.size, tint), TINT_WEIGHT)
    return Image.blend(base, render(request), ART_WEIGHT)


def encode_png(image: Image.Image, request: ImageRequest, backend: str) -> bytes:
    info = PngInfo()
    info.add_text("prompt", request.prompt)
    info.add_text("seed", str(request.seed))
    info.add_text("backend", backend)
    info.add_text("author", request.author)
    out = io.BytesIO()
    # Level 1 compresses these smooth images almost as well as 6, several times faster.
    image.save(out, format="PNG", pnginfo=info, compress_level=1)
    return out.getvalue()


class LocalBackend:
    name = "local"
    model = "offline-art-1"
    honours_seed = True
    edits = True
    sizes: ClassVar[dict[str, tuple[int, int]]] = {
        "1:1": (1024, 1024),
        "16:9": (1344, 768),
        "9:16": (768, 1344),
        "3:2": (1216, 832),
        "2:3": (832, 1216),
    }

    def generate_sync(self, request: ImageRequest) -> GeneratedImage:
        picture = transform(request.source, request) if request.source is not None else render(request)
        data = encode_png(picture, request, self.name)
        return GeneratedImage(data, "png", request.width, request.height, request.seed, self.name, self.model)

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        return await asyncio.to_thread(self.generate_sync, request)

    async def aclose(self) -> None:
        return None
