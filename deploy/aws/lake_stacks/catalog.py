"""Catalog: one Glue database per zone, named as the code names them (`<database_prefix>_<zone>`, catalog.py).

Iceberg's GlueCatalog creates the tables under `s3://<bucket>/iceberg/<database>.db/<table>/`; the
version-folder tables (raw inventory, exports) are created by GlueCatalog.publish.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_glue as glue
from constructs import Construct

from lake_stacks import layout


class CatalogStack(Stack):
    def __init__(self, scope: Construct, id: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.databases: dict[str, glue.CfnDatabase] = {}
        for zone, name in layout.DATABASES.items():
            self.databases[zone] = glue.CfnDatabase(
                self,
                f"Database{''.join(p.capitalize() for p in zone.split('_'))}",
                catalog_id=Aws.ACCOUNT_ID,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=name, description=f"lake_platform zone {zone!r}"
                ),
            )
