"""Provenance: every image made here carries a signature over (post, author, prompt, parent) and a hash
of its pixels, made with the server's key (PROVENANCE_KEY, or a key generated next to MEDIA_DIR on first
start). `verify` tells a picture made here (and by whom) from one that was not, or was altered since.

The signature lives in the file without re-encoding it: a PNG text chunk, a JPEG comment segment, or
an XMP chunk in a WebP container (OPENAI_OUTPUT_FORMAT=webp). A platform that recompresses pictures
(Telegram's photos) drops it, so a picture is verified as a file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.config import ConfigError, Settings
from core.gen.backend import GenerationError
from core.gen.openai_backend import PNG_SIGNATURE, stamp_png
from core.gen.publishable import inspect
from core.models import Post
from core.visibility import DELETED

log = logging.getLogger(__name__)

CHUNK = "imagenet-provenance"
KEY_FILE = "provenance.key"
JPEG_PREFIX = b"imagenet-provenance:"
# In WebP the record is base64 inside an XMP packet of its own namespace, so other tools read the packet
# as XMP and we find the record without parsing XML.
XMP_NS = "https://imagenet.invalid/ns/provenance/1.0/"
XMP_RECORD = re.compile(rb"<imagenet:record>([A-Za-z0-9+/=]+)</imagenet:record>")
VP8X_XMP, VP8X_ALPHA = 0x04, 0x10  # VP8X flags


@dataclass(frozen=True, slots=True)
class Claim:
    post: int
    author: str
    prompt: str
    parent: int | None
    pixels: str  # sha256 of the decoded pixels

    def payload(self) -> bytes:
        fields = {"post": self.post, "author": self.author, "prompt": self.prompt, "parent": self.parent}
        return json.dumps({**fields, "pixels": self.pixels}, sort_keys=True, ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class Verdict:
    made_here: bool
    altered: bool
    claim: Claim | None


def load_key(settings: Settings) -> bytes:
    """PROVENANCE_KEY, or the key file next to MEDIA_DIR, created (readable by us only) when missing."""
    if settings.provenance_key is not None:
        return settings.provenance_key.get_secret_value().encode()
    path = Path(settings.media_dir).parent / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"Invalid setting PROVENANCE_KEY: it is unset and {path} cannot be created ({exc.strerror})"
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    log.info("generated a new provenance key in %s", path)
    return path.read_bytes().strip()


def pixel_hash(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as opened:
        rgba = opened.convert("RGBA")
    return hashlib.sha256(f"{rgba.width}x{rgba.height}".encode() + rgba.tobytes()).hexdigest()


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def sign(
        self, data: bytes, post: int, author: str, prompt: str, parent: int | None, pixels: str | None = None
    ) -> bytes:
        """The same image with the signature embedded (blocking); `pixels`, its pixel_hash when known.
        Other formats are returned as they are."""
        claim = Claim(post, author, prompt, parent, pixels or pixel_hash(data))
        record = json.dumps({"claim": json.loads(claim.payload()), "sig": self._mac(claim.payload())})
        if data.startswith(PNG_SIGNATURE):
            return stamp_png(data, {CHUNK: record})
        if data.startswith(b"\xff\xd8"):
            return _jpeg_with_comment(data, JPEG_PREFIX + record.encode())
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_with_xmp(data, _xmp_packet(record))
        return data

    def verify(self, data: bytes) -> Verdict | None:
        """None when the bytes are not a picture at all (blocking)."""
        try:
            inspect(data)
            with Image.open(io.BytesIO(data)) as opened:
                record = _embedded(opened)
        except (GenerationError, UnidentifiedImageError, OSError, ValueError):
            return None
        if record is None:
            return Verdict(False, False, None)
        try:
            claim = Claim(**json.loads(record)["claim"])
            signature = str(json.loads(record)["sig"])
        except (ValueError, TypeError, KeyError):
            return Verdict(False, False, None)
        if not hmac.compare_digest(self._mac(claim.payload()), signature):
            return Verdict(False, True, claim)
        try:
            unchanged = pixel_hash(data) == claim.pixels
        except (OSError, ValueError):
            unchanged = False
        return Verdict(True, not unchanged, claim)


def _embedded(opened: Image.Image) -> str | None:
    text = getattr(opened, "text", None)
    if isinstance(text, dict) and CHUNK in text:
        return str(text[CHUNK])
    xmp = opened.info.get("xmp") if opened.format == "WEBP" else None
    if isinstance(xmp, bytes):
        found = XMP_RECORD.search(xmp)
        if found is not None:
            return base64.b64decode(found.group(1)).decode("utf-8", errors="replace")
    comment = opened.info.get("comment")
    if isinstance(comment, bytes) and comment.startswith(JPEG_PREFIX):
        return comment[len(JPEG_PREFIX) :].decode("utf-8", errors="replace")
    return None


def _jpeg_with_comment(data: bytes, comment: bytes) -> bytes:
    """A COM segment right after SOI: the compressed pixels are untouched."""
    if len(comment) > 65533:
        return data
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def _xmp_packet(record: str) -> bytes:
    encoded = base64.b64encode(record.encode()).decode()
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:imagenet="{XMP_NS}"><imagenet:record>{encoded}</imagenet:record>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def _chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        fourcc, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if offset + 8 + size > len(data):
            return None
        chunks.append((fourcc, data[offset + 8 : offset + 8 + size]))
        offset += 8 + size + size % 2
    return chunks


def _webp_with_xmp(data: bytes, xmp: bytes) -> bytes:
    """The XMP chunk appended to the RIFF container; the compressed pixels are untouched. A simple
    WebP (one VP8 or VP8L chunk) becomes an extended one, whose VP8X header announces the XMP."""
    chunks = _webp_chunks(data)
    if not chunks:
        return data
    if chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        header[0] |= VP8X_XMP
        chunks = [(b"VP8X", bytes(header)), *[c for c in chunks[1:] if c[0] != b"XMP "]]
    else:
        with Image.open(io.BytesIO(data)) as opened:  # the header only: size and alpha
            width, height, alpha = opened.width, opened.height, "A" in opened.getbands()
        flags = VP8X_XMP | (VP8X_ALPHA if alpha else 0)
        canvas = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
        chunks = [(b"VP8X", bytes([flags, 0, 0, 0]) + canvas), *chunks]
    body = b"WEBP" + b"".join(_chunk(fourcc, payload) for fourcc, payload in [*chunks, (b"XMP ", xmp)])
    return b"RIFF" + struct.pack("<I", len(body)) + body


def describe_sent(post: Post, author: str, platform: str) -> str:
    """The very file we sent, recognised by the platform's id for it, its signature gone with the
    platform's re-encoding."""
    parent = f", a remix of #{post.parent_id}" if post.parent_id else ""
    gone = " (the post has since been deleted)" if post.status == DELETED else ""
    return (
        f"✅ Sent from here: #{post.id} by @{author}, from the prompt “{post.prompt}”{parent}{gone}. "
        f"{platform}'s id for this photo shows it is the very file this bot sent. Its signature could not "
        f"be checked, because {platform} re-encodes photos; send the picture as a file to check that too."
    )


def recompressed(platform: str) -> str:
    return (
        f"❌ No signature: {platform} re-encodes photos, which removes it, or the picture was not made here. "
        "Send it as a file (not as a photo) to check it."
    )


def describe(verdict: Verdict | None, exists: bool) -> str:
    if verdict is None:
        return "That is not a picture I can read."
    claim = verdict.claim
    if not verdict.made_here:
        if claim is None:
            return "❌ Not made here: the picture carries no signature of this network."
        return "❌ Not made here, or its signature was forged: it does not match this network's key."
    assert claim is not None
    parent = f", a remix of #{claim.parent}" if claim.parent else ""
    origin = f"#{claim.post} by @{claim.author}, from the prompt “{claim.prompt}”{parent}"
    if verdict.altered:
        return f"⚠️ Altered: made here as {origin}, but its pixels were changed since."
    gone = " (the post has since been deleted)" if not exists else ""
    return f"✅ Made here: {origin}{gone}."
