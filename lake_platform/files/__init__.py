"""Shared files (EFS; locally a folder under the lake root): lake data published as files for file-based consumers."""
