"""Stack outputs named after the environment variables the code reads.

An output's key is the variable's name in CamelCase (CloudFormation output keys are alphanumeric):
LAKE_BUCKET -> LakeBucket; `env_name` inverts it. Its description starts with the variable's name.
"""

from __future__ import annotations

import re

from aws_cdk import CfnOutput
from constructs import Construct


def output_key(env_name: str) -> str:
    return "".join(part.capitalize() for part in env_name.split("_"))


def env_name(output_key: str) -> str:
    return "_".join(word.upper() for word in re.findall(r"[A-Z][a-z0-9]*", output_key))


def env_output(scope: Construct, name: str, value: str, what: str) -> CfnOutput:
    assert env_name(output_key(name)) == name, name
    return CfnOutput(scope, output_key(name), value=value, description=f"{name}: {what}")
