"""Whole-file checks of the cleaning job, run on the driver before Spark reads a file.

A file that is empty, not the declared format, not UTF-8, truncated or compressed junk is rejected whole
with a reason; Spark would otherwise fail the whole batch on it, or read garbage as records. Ships to Glue
beside clean.py: standard library only (boto3, present on Glue, for s3:// objects).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import os
import re
import zlib
from contextlib import closing

CHUNK = 1 << 20
MAX_HEADER = 1 << 20  # a "header" longer than this is not one (a 10 MB single line, binary junk)
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
FOOTER_READ = 1 << 16  # one ranged read holds a typical footer (a DMS change file's is a few KB)
GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def hadoop_path(uri: str) -> str:
    """`uri` with Hadoop's glob characters escaped, so a file named `a[1].csv` is read as itself."""
    return GLOB_CHARS.sub(r"\\\1", uri)


def _s3(uri: str) -> tuple:
    import boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return boto3.client("s3"), bucket, key


def size_of(uri: str) -> int:
    if uri.startswith("s3://"):
        s3, bucket, key = _s3(uri)
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    return os.path.getsize(uri.removeprefix("file://"))


def read_range(uri: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of the object; a ranged GET on S3."""
    if end <= start:
        return b""
    if uri.startswith("s3://"):
        s3, bucket, key = _s3(uri)
        return s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"].read()
    with open(uri.removeprefix("file://"), "rb") as f:
        f.seek(start)
        return f.read(end - start)


def _open(uri: str):
    if uri.startswith("s3://"):
        s3, bucket, key = _s3(uri)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    else:
        body = open(uri.removeprefix("file://"), "rb")
    return gzip.GzipFile(fileobj=body) if uri.endswith(".gz") else body


def unreadable_name(uri: str) -> str | None:
    # Hadoop's local file system opens a checksum file `.<name>.crc` and cannot parse a name with ':'.
    if not uri.startswith("s3://") and ":" in os.path.basename(uri):
        return "file name contains ':', which Hadoop's local file system cannot open"
    return None


def check_parquet(uri: str) -> tuple[str | None, bytes | None]:
    """(why the object is not a readable Parquet file, None) or (None, its footer as a data-less Parquet file).

    The footer (the schema and row-group metadata) is returned as magic + footer + length + magic, which a
    Parquet reader parses like the whole file; it comes from the same ranged reads as the checks.
    """
    size = size_of(uri)
    if size == 0:
        return "empty file (0 bytes)", None
    head = read_range(uri, 0, 4)
    if head != PARQUET_MAGIC:
        return f"not Parquet: starts with {head!r}, not the PAR1 magic (a CSV or other format?)", None
    tail = read_range(uri, max(size - FOOTER_READ, 0), size)
    if size < 12 or tail[-4:] != PARQUET_MAGIC:
        return "truncated Parquet: the file does not end with its footer (PAR1 magic missing)", None
    footer = int.from_bytes(tail[-8:-4], "little")
    if footer > size - 12:
        return f"truncated Parquet: footer of {footer} bytes does not fit in a {size}-byte file", None
    if footer + 8 > len(tail):
        tail = read_range(uri, size - footer - 8, size)
    return None, PARQUET_MAGIC + tail[-(footer + 8) :]


def check_csv(uri: str) -> tuple[str | None, list[str] | None]:
    """(why the object is not a UTF-8 CSV, None) or (None, its header's column names)."""
    head = read_range(uri, 0, 4)
    if not head:
        return "empty file (0 bytes)", None
    if uri.endswith(".gz") and head[:2] != GZIP_MAGIC:
        return f"named .gz but is not gzip data (starts with {head!r})", None
    if head == PARQUET_MAGIC:
        return "Parquet data where the contract declares CSV", None
    try:
        first_line = _scan_text(uri)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        return f"corrupt gzip data: {e}", None
    except ValueError as e:
        return str(e), None
    if first_line is None:
        return "empty file (no data after decompression)", None
    if len(first_line) >= MAX_HEADER:
        return f"no header line: the first line is longer than {MAX_HEADER} characters", None
    return None, next(csv.reader([first_line.lstrip("\ufeff")]), [])


def _scan_text(uri: str) -> str | None:
    """The first line, after checking the whole (decompressed) stream is UTF-8 text without NUL bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, first = 0, None
    with closing(_open(uri)) as stream:
        while chunk := stream.read(CHUNK):
            nul = chunk.find(b"\0")
            if nul >= 0:
                raise ValueError(f"not UTF-8 text: NUL byte at offset {offset + nul} (binary or UTF-16?)")
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as e:
                raise ValueError(f"not UTF-8: invalid byte 0x{chunk[e.start]:02x} at offset {offset + e.start}") from None
            if first is None or ("\n" not in first and len(first) < MAX_HEADER):
                first = (first or "") + text
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValueError(f"not UTF-8: the file ends inside a multi-byte character (offset {offset})") from None
    if not first:
        return None
    return first.split("\n", 1)[0].rstrip("\r")
