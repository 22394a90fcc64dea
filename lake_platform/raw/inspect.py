"""What an object is, from its bytes: content type by signature (then extension), and per-type facts.

Headers are parsed by hand (PNG IHDR, JPEG SOF, WAV fmt/data chunks, PDF page objects) so the lake needs
no imaging or audio library to describe what it holds.
"""

from __future__ import annotations

import re
import struct
from pathlib import PurePosixPath

SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PAR1", "application/vnd.apache.parquet"),
    (b"\x1f\x8b", "application/gzip"),
    (b"PK\x03\x04", "application/zip"),
]
EXTENSIONS = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".wav": "audio/wav",
    ".pdf": "application/pdf",
    ".parquet": "application/vnd.apache.parquet",
    ".gz": "application/gzip",
    ".zip": "application/zip",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
}
TEXT_TYPES = {"text/csv", "text/plain", "text/markdown", "application/json", "application/x-ndjson"}
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the image size.
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def by_signature(body: bytes) -> str | None:
    if body[:4] == b"RIFF" and body[8:12] == b"WAVE":
        return "audio/wav"
    return next((kind for magic, kind in SIGNATURES if body.startswith(magic)), None)


def is_text(body: bytes) -> bool:
    """UTF-8 without NUL bytes, judged on the first 64 KiB."""
    head = body[: 1 << 16]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # Text whose 64 KiB cut falls inside a multi-byte character is still text.
        return len(body) > len(head) and error.start >= len(head) - 3
    return True


def content_type(name: str, body: bytes) -> tuple[str, str | None]:
    """(content type, note): the signature decides; the extension names text, or is noted if it lies."""
    suffix = PurePosixPath(name).suffix.lower()
    named = EXTENSIONS.get(suffix)
    signed = by_signature(body)
    if signed is None:
        if is_text(body):
            signed = named if named in TEXT_TYPES else "text/plain"
        else:
            signed = "application/octet-stream"
    lie = named is not None and named != signed and not (named in TEXT_TYPES and signed == "text/plain")
    return signed, (f"named {suffix} ({named}) but the content is {signed}" if lie else None)


def png_size(body: bytes) -> tuple[int, int]:
    if body[12:16] != b"IHDR":
        raise ValueError("PNG without an IHDR chunk first")
    return struct.unpack(">II", body[16:24])


def jpeg_size(body: bytes) -> tuple[int, int]:
    """Width and height from the first start-of-frame segment."""
    pos = 2
    while pos + 4 <= len(body):
        if body[pos] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {pos}")
        marker = body[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        elif marker in JPEG_SOF:
            height, width = struct.unpack(">HH", body[pos + 5 : pos + 9])
            return width, height
        elif marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before them
            break
        else:
            pos += 2 + struct.unpack(">H", body[pos + 2 : pos + 4])[0]
    raise ValueError("JPEG without a start-of-frame segment")


def wav_facts(body: bytes) -> dict:
    """Duration, sample rate and channels from the RIFF `fmt ` and `data` chunks."""
    fmt, data_size, pos = None, None, 12
    while pos + 8 <= len(body):
        chunk, size = body[pos : pos + 4], struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[pos + 8 : pos + 24])
        elif chunk == b"data":
            data_size = min(size, len(body) - pos - 8)  # a truncated file: what is there
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or data_size is None:
        raise ValueError("WAV without fmt and data chunks")
    _, channels, rate, byte_rate, _, _ = fmt
    if not byte_rate:
        raise ValueError("WAV with a byte rate of 0")
    return {"audio_duration_seconds": data_size / byte_rate, "audio_sample_rate": rate, "audio_channels": channels}


def pdf_pages(body: bytes) -> int:
    """Page objects (`/Type /Page`); else the page tree's `/Count` (pages in compressed object streams)."""
    pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", body))
    if pages:
        return pages
    counts = [int(c) for c in re.findall(rb"/Count\s+(\d+)", body)]
    if not counts:
        raise ValueError("PDF without readable page objects or page count")
    return max(counts)


def line_count(body: bytes) -> int:
    return body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)


def facts(kind: str, body: bytes) -> dict:
    """Per-type facts for the inventory's columns; raises ValueError for a malformed header."""
    if kind == "image/png":
        return dict(zip(("image_width", "image_height"), png_size(body)))
    if kind == "image/jpeg":
        return dict(zip(("image_width", "image_height"), jpeg_size(body)))
    if kind == "audio/wav":
        return wav_facts(body)
    if kind == "application/pdf":
        return {"page_count": pdf_pages(body)}
    if kind in TEXT_TYPES:
        return {"line_count": line_count(body)}
    return {}


def describe(name: str, body: bytes) -> dict:
    """Content type, per-type facts and a note (a misleading extension, an unreadable header)."""
    kind, note = content_type(name, body)
    try:
        found = facts(kind, body)
    except (ValueError, struct.error) as error:
        found, note = {}, "; ".join(filter(None, (note, f"unreadable {kind} header: {error}")))
    return {"content_type": kind, **found, "note": note}
