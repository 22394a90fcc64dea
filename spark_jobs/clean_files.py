"""Whole-file checks of the cleaning job, run on the driver before Spark reads a file.

A file that is empty, not the declared format, not UTF-8, truncated or compressed junk is rejected whole
with a reason; Spark would otherwise fail the whole batch on it, or read garbage as records. Ships to Glue
beside clean.py: standard library only (boto3, present on Glue, for s3:// objects).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import zlib
from contextlib import closing

CHUNK = 1 << 20
MAX_HEADER = 1 << 20  # a "header" longer than this is not one (a 10 MB single line, binary junk)
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
FOOTER_READ = 1 << 16  # one ranged read holds a typical footer (a DMS change file's is a few KB)
BOM = "\ufeff"
FIELD_LIMIT = 2**31 - 1  # csv.field_size_limit: a field may be as long as the file (default 128 KiB)
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


def read_all(uri: str) -> bytes:
    """The object's bytes as stored (still gzipped if it is): an S3 GET, or the local file."""
    if uri.startswith("s3://"):
        s3, bucket, key = _s3(uri)
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with open(uri.removeprefix("file://"), "rb") as f:
        return f.read()


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
        start = _scan_text(uri)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        return f"corrupt gzip data: {e}", None
    except ValueError as e:
        return str(e), None
    if not start:
        return "empty file (no data after decompression)", None
    first_line = next(iter(io.StringIO(start, newline="")))
    if len(first_line.rstrip("\r\n")) >= MAX_HEADER:
        return f"no header line: the first line is longer than {MAX_HEADER} characters", None
    for _, _, header, error in csv_records(start):  # the first record: blank lines are none
        if error:
            return f"the header is not a valid CSV record: {error}", None
        return None, header
    return "no header: the file holds only blank lines", None


def _scan_text(uri: str) -> str:
    """The text's first characters (up to 2 x MAX_HEADER, BOM removed), after checking the whole
    (decompressed) stream is UTF-8 text without NUL bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, start = 0, ""
    with closing(_open(uri)) as stream:
        while chunk := stream.read(CHUNK):
            nul = chunk.find(b"\0")
            if nul >= 0:
                raise ValueError(f"not UTF-8 text: NUL byte at offset {offset + nul} (binary or UTF-16?)")
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as e:
                raise ValueError(f"not UTF-8: invalid byte 0x{chunk[e.start]:02x} at offset {offset + e.start}") from None
            if len(start) < 2 * MAX_HEADER:
                start += text[: 2 * MAX_HEADER - len(start)]
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValueError(f"not UTF-8: the file ends inside a multi-byte character (offset {offset})") from None
    return start.removeprefix(BOM)


def csv_text(data: bytes, name: str) -> str:
    """A CSV object's bytes as text: gunzipped when named .gz, decoded as UTF-8, one leading BOM removed.

    check_csv has vetted the object already; this runs where the records are parsed (a Spark task)."""
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8").removeprefix(BOM)


class _Lines:
    """The physical lines of a text (ended by \\n, \\r\\n or \\r, kept as delivered), remembering those taken."""

    def __init__(self, text: str):
        self._lines = iter(io.StringIO(text, newline=""))
        self.taken: list[str] = []
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        self.count += 1
        return line


def csv_records(text: str):
    """Yield (line, text, fields, error) for each record of a CSV text, as RFC 4180 reads it.

    `line` is the physical line the record starts on (1 is the first), `text` the record as delivered (its
    lines with their line breaks, without the last one), `fields` its values (None when malformed) and
    `error` why it is malformed (bad quoting, or a quote never closed before the end of the text; None if
    fine). Quoted fields may hold commas, quotes (doubled) and line breaks; lines end with \\n, \\r\\n or
    \\r. A blank line (only spaces or tabs) is not a record. Python's csv module parses, in strict mode: a
    quoting error is reported, never repaired.
    """
    csv.field_size_limit(FIELD_LIMIT)
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)
    while True:
        lines.taken = []
        start = lines.count + 1
        try:
            fields, error = next(reader), None
        except StopIteration:
            return
        except csv.Error as e:
            fields, error = None, str(e)
        delivered = "".join(lines.taken)
        if not lines.taken:
            return
        record = delivered.removesuffix("\n").removesuffix("\r")  # the record's own last line break
        if fields is not None and len(lines.taken) == 1 and not record.strip(" \t"):
            continue  # a blank line
        yield start, record, fields, error
