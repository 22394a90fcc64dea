"""The maintenance file share that DataSync copies into landing: documents, photos and audio.

Every file here is synthetic and small, and says so in its name (`synthetic_…`): hand-written PDFs,
PNG photos drawn pixel by pixel, WAV tones, text, Markdown and CSV, made with the standard library
only. The content is seeded, so a seed always writes the same bytes; the simulator (`add_share_files`)
drops a few files a day and now and then appends to an existing maintenance log.
"""

from __future__ import annotations

import math
import random
import struct
import wave
import zlib
from collections.abc import Callable
from datetime import date
from io import BytesIO
from pathlib import Path

SHARE_DIR = "sources/share"

# What the seed writes: (relative path, kind, parameters). Tests assert these facts on the landed files.
PDF_PAGES = {1: 1, 2: 2, 3: 3}  # synthetic_inspection_N.pdf -> pages
PNG_SIZES = {1: (64, 48), 2: (80, 60), 3: (32, 32)}  # synthetic_engine_photo_N.png -> (width, height)
WAV_SECONDS = {1: (1.0, 8000), 2: (1.5, 8000), 3: (0.5, 16000)}  # synthetic_cockpit_audio_N.wav -> (s, Hz)
COMPONENTS = ["fan blade", "compressor", "combustor", "turbine", "gearbox", "landing gear", "APU"]


def png_bytes(width: int, height: int, rng: random.Random) -> bytes:
    """An 8-bit RGB PNG: a gradient with seeded noise, each row unfiltered (filter type 0)."""
    base = [rng.randrange(256) for _ in range(3)]
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            noise = rng.randrange(16)
            pixel = (base[0] + 3 * x + noise, base[1] + 3 * y, base[2] + x + y)
            rows += bytes(c % 256 for c in pixel)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # depth 8, colour type 2 (RGB)
    pixels = zlib.compress(bytes(rows), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def wav_bytes(seconds: float, rate: int, rng: random.Random) -> bytes:
    """A mono 16-bit PCM WAV: a seeded tone with a little noise (a stand-in for cockpit audio)."""
    frequency = rng.choice([220.0, 330.0, 440.0])
    frames = round(seconds * rate)
    samples = (
        int(8000 * math.sin(2 * math.pi * frequency * i / rate) + rng.randint(-300, 300)) for i in range(frames)
    )
    buffer = BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()


def pdf_bytes(title: str, pages: list[list[str]]) -> bytes:
    """A minimal valid PDF 1.4: one page per entry of `pages` (its lines in Helvetica), with an xref table."""
    count = len(pages)
    # Objects: 1 catalog, 2 page tree, 3 font, then a page and its content stream for each page.
    page_ids = [4 + 2 * i for i in range(count)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for number, lines in enumerate(pages, start=1):
        heading = f"({_pdf_escape(title)} - page {number} of {count}) Tj"
        text = [heading, *(f"T* ({_pdf_escape(t)}) Tj" for t in lines)]
        stream = ("BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(text) + " ET").encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            f" /Contents {4 + 2 * (number - 1) + 1} 0 R >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _finding(rng: random.Random) -> str:
    return f"{rng.choice(COMPONENTS)}: {rng.choice(['no defect', 'wear within limits', 'replaced', 'recheck'])}"


def _inspection(title: str, pages: int, rng: random.Random) -> bytes:
    return pdf_bytes(title, [[_finding(rng) for _ in range(3)] for _ in range(pages)])


def seed_share(lake_root: Path, log: Callable[[str], None] = print) -> int:
    """(Re)write the share's synthetic files under `lake_root/sources/share`; returns how many."""
    share = lake_root / SHARE_DIR
    rng = random.Random("share-seed")
    files: dict[str, bytes] = {}
    for n, pages in PDF_PAGES.items():
        files[f"docs/synthetic_inspection_{n}.pdf"] = _inspection(f"Synthetic inspection {n}", pages, rng)
    for n, (width, height) in PNG_SIZES.items():
        files[f"images/synthetic_engine_photo_{n}.png"] = png_bytes(width, height, rng)
    for n, (seconds, rate) in WAV_SECONDS.items():
        files[f"audio/synthetic_cockpit_audio_{n}.wav"] = wav_bytes(seconds, rate, rng)
    log_lines = [f"2013-01-01 N{100 + i}UA {_finding(rng)}" for i in range(12)]
    files["docs/synthetic_maintenance_log_1.txt"] = ("\n".join(log_lines) + "\n").encode()
    files["docs/synthetic_procedure.md"] = (
        "# Synthetic procedure: borescope inspection\n\nSynthetic sample, not a real procedure.\n\n"
        + "".join(f"{i}. Inspect the {c}.\n" for i, c in enumerate(COMPONENTS, start=1))
    ).encode()
    parts = [f"P-{1000 + i},{c},{rng.randint(1, 20)}" for i, c in enumerate(COMPONENTS)]
    files["docs/synthetic_parts_list.csv"] = "\n".join(["part_number,component,quantity", *parts, ""]).encode()
    for relative, body in files.items():
        _write(share / relative, body)
    log(f"file share: {len(files)} synthetic documents, photos and recordings -> {share}")
    return len(files)


def add_share_files(lake_root: Path, day: date, rng: random.Random, log: Callable[[str], None] = print) -> int:
    """A simulated day at the share: a new inspection report and photo, sometimes a recording, and now
    and then a line appended to the maintenance log (a changed file DataSync must transfer again)."""
    share = lake_root / SHARE_DIR
    report = _inspection(f"Synthetic inspection {day}", rng.randint(1, 3), rng)
    photo = png_bytes(rng.choice([32, 48, 64]), rng.choice([24, 32]), rng)
    written = [
        (f"docs/synthetic_inspection_{day}.pdf", report),
        (f"images/synthetic_engine_photo_{day}.png", photo),
    ]
    if rng.random() < 0.3:
        written.append((f"audio/synthetic_cockpit_audio_{day}.wav", wav_bytes(0.5, 8000, rng)))
    for relative, body in written:
        _write(share / relative, body)
    changed = 0
    maintenance_log = share / "docs" / "synthetic_maintenance_log_1.txt"
    if rng.random() < 0.25 and maintenance_log.exists():
        with open(maintenance_log, "a") as out:
            out.write(f"{day} N{rng.randint(100, 999)}UA {_finding(rng)}\n")
        changed = 1
    log(f"  file share: {len(written)} new synthetic file(s), {changed} changed")
    return len(written) + changed


def _write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
