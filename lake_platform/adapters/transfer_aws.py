"""Where an AWS Transfer Family server stores each partner's uploads: the landing prefixes to watch.

On AWS no code talks to the SFTP server: partners upload, Transfer Family writes the objects into the lake
bucket, and the landing sensors list those prefixes. This resolves them from the users' home directories,
and refuses a home outside the bucket's `landing/` zone, where nothing would ever pick the files up.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pydantic import Field

from lake_platform.adapters.partners import SftpPartners, UnknownPartner

# DescribeUser / DescribeServer of a name the server does not have (moto, the tests' stand-in, says UserNotFound).
NOT_FOUND = {"ResourceNotFoundException", "UserNotFound", "ServerNotFound"}


def partner_landing_prefixes(
    server_id: str, users: list[str], bucket: str, client: Any = None
) -> dict[str, list[str]]:
    """`{user: [landing prefix, ...]}` for the Transfer Family users of an S3-backed server.

    A LOGICAL home (the local stand-in's layout: the partner sees `/`) may map several entries, each a
    prefix; a PATH home is one prefix. Each prefix is a key prefix in `bucket` ending in `/`.
    """
    if client is None:
        import boto3

        client = boto3.client("transfer")
    server = client.describe_server(ServerId=server_id)["Server"]
    if server.get("Domain", "S3") != "S3":
        raise ValueError(
            f"Transfer Family server {server_id} stores files in {server['Domain']}, not S3:"
            " the lake can only watch a server whose users' homes are in the lake bucket"
        )
    prefixes = {}
    for name in users:
        user = client.describe_user(ServerId=server_id, UserName=name)["User"]
        prefixes[name] = [_landing_prefix(t, bucket, server_id, name) for t in _home_targets(user)]
    return prefixes


def _home_targets(user: dict[str, Any]) -> list[str]:
    if user.get("HomeDirectoryType") == "LOGICAL":
        targets = [m["Target"] for m in user.get("HomeDirectoryMappings") or []]
    else:
        targets = [user["HomeDirectory"]] if user.get("HomeDirectory") else []
    return targets or ["/"]  # no home: Transfer Family starts the user at the root of all buckets


def _landing_prefix(target: str, bucket: str, server_id: str, user: str) -> str:
    """`/<bucket>/landing/sftp/faa` -> `landing/sftp/faa/`, if it is inside the bucket's landing zone."""
    target_bucket, _, key = target.strip("/").partition("/")
    key = posixpath.normpath(key) if key else ""
    if target_bucket != bucket or not key.startswith("landing/"):
        raise ValueError(
            f"Transfer Family user {user!r} of server {server_id} has its home at {target!r}, outside"
            f" s3://{bucket}/landing/: its uploads would never reach the lake. Map its home directory"
            f" (HomeDirectoryType LOGICAL, Entry '/') to /{bucket}/landing/sftp/{user}"
        )
    return f"{key}/"


class AwsTransferPartners(SftpPartners):
    """The partners are the users of the lake's Transfer Family server (deploy/aws/partners.json creates them)."""

    server_id: str = Field(description="The Transfer Family server's id (s-...): LAKE_TRANSFER_SERVER_ID.")
    bucket: str = Field(description="The lake bucket, where the users' homes must be (under landing/).")
    region_name: str | None = Field(default=None, description="AWS region; default chain if unset.")
    endpoint_url: str | None = Field(default=None, description="Custom endpoint (tests).")

    def landing_prefixes(self, partner: str) -> list[str]:
        import boto3
        from botocore.exceptions import ClientError

        client = boto3.client("transfer", region_name=self.region_name, endpoint_url=self.endpoint_url)
        try:
            return partner_landing_prefixes(self.server_id, [partner], self.bucket, client)[partner]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in NOT_FOUND:
                raise
            if exc.operation_name == "DescribeServer":
                raise RuntimeError(
                    f"Transfer Family server {self.server_id} (LAKE_TRANSFER_SERVER_ID) does not exist in"
                    f" {client.meta.region_name}: set LAKE_TRANSFER_SERVER_ID to the LakeIngest stack's output"
                ) from exc
            raise UnknownPartner(
                f"Transfer Family server {self.server_id} has no user {partner!r}: add the partner to"
                " deploy/aws/partners.json and deploy the LakeIngest stack"
            ) from exc
