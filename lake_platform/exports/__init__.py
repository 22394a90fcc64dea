"""Exports: warehouse tables published as Parquet datasets for consumers outside the platform."""

from lake_platform.exports.assets import build_export_assets

__all__ = ["build_export_assets"]
