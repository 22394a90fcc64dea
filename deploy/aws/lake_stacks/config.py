"""The deployment's settings: `deploy/aws/config.json` and the partners of `deploy/aws/partners.json`, with CDK
context values (`cdk synth -c image_tag=v42`) winning over the file.

Keys of config.json:
- region, availability_zones: where the stacks go. Three zones: a Redshift Serverless workgroup needs subnets
  in three. The account stays the CLI's (the templates are account-agnostic).
- stack_prefix: prefix of every stack name (`LakeStorage`, ...).
- bucket_name_prefix: the lake bucket is `<prefix>-<account>-<region>` (a known name, so the S3 event
  notification's queue policy can name it without a circular reference).
- landing_noncurrent_days: noncurrent versions under landing/ expire after this many days.
- landing_expiration_days: current objects under landing/ expire after this many days; null (the default)
  keeps them: AwsDataExchange decides which revisions are exported by the folders under landing/, so expiring
  them would export every revision again.
- access_log_retention_days, log_retention_days: the access-log bucket's and the CloudWatch log groups' retention.
- image_tag: tag of the images in the stacks' ECR repositories (lake-dagster, lake-emr-spark).
- emr_release_label: the EMR Serverless release (emr-7.x: Spark 3.5, the Iceberg runtime the jobs expect).
- weather_data_set_id: the entitled AWS Data Exchange data set (LAKE_WEATHER_DATA_SET_ID); a subscription
  cannot be created by CloudFormation.
- dms_source: the operations database DMS replicates: engine_name (postgres or mysql), database_name, and
  secret_name, an existing Secrets Manager secret holding `host`, `port`, `username` and `password` (DMS reads
  the connection from it; nothing of it is in the templates).
- create_dms_vpc_role: create the account-wide role `dms-vpc-role` DMS needs for subnet groups (false when the
  account already has it).
- dms_replication_instance_class, redshift_base_capacity, rds_instance_type, rds_multi_az, dagster_cpu,
  dagster_memory_mib: sizes.
- datasync_source_location_arn: the DataSync location of the maintenance share (NFS/SMB, with its agent);
  null: the `/share` folder of the lake's EFS file system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]  # deploy/aws
CONFIG_FILE = HERE / "config.json"
PARTNERS_FILE = HERE / "partners.json"


@dataclass(frozen=True)
class Partner:
    name: str
    ssh_public_keys: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    values: dict[str, Any]
    partners: tuple[Partner, ...]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(f"config.json has no key {key!r}") from None


def load(context: dict[str, Any] | None = None) -> Config:
    values = {k: v for k, v in json.loads(CONFIG_FILE.read_text()).items() if not k.startswith("_")}
    for key, value in (context or {}).items():
        if key in values:
            values[key] = _coerce(values[key], value)
    partners = tuple(
        Partner(name=p["name"], ssh_public_keys=tuple(p.get("ssh_public_keys", ())))
        for p in json.loads(PARTNERS_FILE.read_text())["partners"]
    )
    for partner in partners:
        if not partner.name.replace("_", "").isalnum() or partner.name != partner.name.lower():
            raise ValueError(f"partners.json: {partner.name!r} must be lower-case letters, digits and _")
    return Config(values=values, partners=partners)


def _coerce(default: Any, value: Any) -> Any:
    """Context values from the command line are strings: give them the file value's type."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    return json.loads(value)
