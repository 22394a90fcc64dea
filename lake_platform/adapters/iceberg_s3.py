"""PyIceberg's file access to S3 through boto3, so Python code reads the lake's Iceberg tables on the Glue Data
Catalog with the AWS credential chain the rest of the platform uses.

The Spark jobs commit the tables (Iceberg's GlueCatalog and S3FileIO in the JVM). On the Python side, the ML steps
only need a table's current file list: PyIceberg's `GlueCatalog` loads the table and plans the scan, which reads
the metadata JSON, the manifest list and the manifests (small objects) through a `FileIO`. PyIceberg's own S3
FileIOs go through pyarrow's C++ S3 client or s3fs/aiobotocore, which neither honour a per-client endpoint the
way the store does nor run against moto's in-process mock; this one is plain boto3 (`py-io-impl`, the way
PyIceberg loads a custom FileIO), with the same endpoint and region as the lake's `S3Store`.

Properties: `s3.region`, `s3.endpoint` (PyIceberg's names), and `s3.sse.type` = `kms` with `s3.sse.key` = the key's
ARN (Iceberg's S3FileIO names, which the Spark jobs' catalog sets too): every object it writes is then SSE-KMS with
that key. An object is read whole into memory on open, which suits metadata files; data files are read by the
caller through the store.
"""

from __future__ import annotations

import io
from urllib.parse import urlparse

from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream

S3_REGION = "s3.region"
S3_ENDPOINT = "s3.endpoint"
S3_SSE_TYPE = "s3.sse.type"
S3_SSE_KEY = "s3.sse.key"


def _bucket_key(location: str) -> tuple[str, str]:
    parsed = urlparse(location)
    if parsed.scheme not in ("s3", "s3a", "s3n"):
        raise ValueError(f"{location}: not an S3 location (Boto3FileIO reads s3:// only)")
    return parsed.netloc, parsed.path.lstrip("/")


def _sse(properties) -> dict[str, str]:
    """PutObject's SSE-KMS parameters from the FileIO properties (none unless `s3.sse.type` is `kms`)."""
    kind = (properties.get(S3_SSE_TYPE) or "none").lower()
    if kind == "none":
        return {}
    if kind != "kms" or not properties.get(S3_SSE_KEY):
        raise ValueError(f"Boto3FileIO: {S3_SSE_TYPE}={kind!r} is not supported; set kms with {S3_SSE_KEY}=<key ARN>")
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": properties[S3_SSE_KEY]}


class _Upload(io.BytesIO):
    """A write stream that puts the object when closed (metadata and manifests are small)."""

    def __init__(self, client, bucket: str, key: str, encryption: dict[str, str]):
        super().__init__()
        self._client, self._bucket, self._key, self._encryption = client, bucket, key, encryption

    def close(self) -> None:
        if not self.closed:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=self.getvalue(), **self._encryption)
        super().close()


class Boto3InputFile(InputFile):
    def __init__(self, location: str, client):
        super().__init__(location)
        self._client = client
        self._bucket, self._key = _bucket_key(location)

    def _head(self) -> dict | None:
        try:
            return self._client.head_object(Bucket=self._bucket, Key=self._key)
        except self._client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def __len__(self) -> int:
        head = self._head()
        if head is None:
            raise FileNotFoundError(self.location)
        return head["ContentLength"]

    def exists(self) -> bool:
        return self._head() is not None

    def open(self, seekable: bool = True) -> InputStream:
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key)["Body"].read()
        except self._client.exceptions.NoSuchKey as error:
            raise FileNotFoundError(self.location) from error
        return io.BytesIO(body)


class Boto3OutputFile(OutputFile):
    def __init__(self, location: str, client, encryption: dict[str, str] | None = None):
        super().__init__(location)
        self._client, self._encryption = client, encryption or {}
        self._bucket, self._key = _bucket_key(location)

    def __len__(self) -> int:
        return len(self.to_input_file())

    def exists(self) -> bool:
        return self.to_input_file().exists()

    def to_input_file(self) -> InputFile:
        return Boto3InputFile(self.location, self._client)

    def create(self, overwrite: bool = False) -> OutputStream:
        if not overwrite and self.exists():
            raise FileExistsError(f"{self.location} already exists")
        return _Upload(self._client, self._bucket, self._key, self._encryption)


class Boto3FileIO(FileIO):
    def __init__(self, properties=None):
        import boto3

        super().__init__(properties or {})
        self._client = boto3.client(
            "s3", region_name=self.properties.get(S3_REGION), endpoint_url=self.properties.get(S3_ENDPOINT)
        )
        self._encryption = _sse(self.properties)

    def new_input(self, location: str) -> InputFile:
        return Boto3InputFile(location, self._client)

    def new_output(self, location: str) -> OutputFile:
        return Boto3OutputFile(location, self._client, self._encryption)

    def delete(self, location) -> None:
        bucket, key = _bucket_key(location if isinstance(location, str) else location.location)
        self._client.delete_object(Bucket=bucket, Key=key)
