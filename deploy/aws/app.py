#!/usr/bin/env python3
"""Entry point of the `cdk` CLI (cdk.json): `cdk synth`, `cdk deploy --all`. See README.md beside this file."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # lake_stacks/, and lake_platform (the shared constants)

from lake_stacks.app import build_app  # noqa: E402

build_app().synth()
