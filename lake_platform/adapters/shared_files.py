"""The shared file system: a POSIX folder that file-based consumers read (README, "Shared files").

Locally it is `<LAKE_ROOT>/shared`; on AWS it is the EFS access point that the Dagster run tasks mount at the
path in LAKE_SHARED_FILES_PATH (deploy/aws/lake_stacks/dagster.py). Consumers read whole files while the lake
rewrites them, so every write is atomic and durable: the new content goes to a hidden temporary name in the same
folder (`storage.replace_atomically`), is flushed and fsynced, renamed over the target in one step (`os.replace`,
atomic on a local file system and on EFS/NFS alike), and the folder is fsynced so the rename survives a crash.
A reader opens the previous file or the new one, never a partial one.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from lake_platform.adapters.storage import replace_atomically

ENV_VAR = "LAKE_SHARED_FILES_PATH"


@dataclass(frozen=True)
class WrittenFile:
    """What a write left in place: the file's path, its size and the SHA-256 of its content."""

    path: Path
    size: int
    sha256: str


class SharedFiles(dg.ConfigurableResource):
    """Files published to a POSIX folder, written atomically. Paths are `/`-separated and relative to `root`."""

    root: str = Field(description=f"The shared folder: locally <LAKE_ROOT>/shared, on AWS the EFS mount ({ENV_VAR}).")
    create_root: bool = Field(
        default=False,
        description="Create `root` when it is missing (locally). Off on AWS: there a missing root means the EFS "
        "volume is not mounted, and files written into the container's own disk would be lost with the task.",
    )

    def _root(self) -> Path:
        root = Path(self.root)
        if not root.is_dir():
            if self.create_root and not root.exists():
                root.mkdir(parents=True, exist_ok=True)
            elif root.exists():
                raise NotADirectoryError(f"the shared files root {root} is not a directory")
            else:
                raise FileNotFoundError(
                    f"the shared files root {root} does not exist: on AWS it is where the run task mounts the EFS "
                    f"access point ({ENV_VAR}); the task definition lacks that volume or mount point, or {ENV_VAR} "
                    "names another path (deploy/aws/lake_stacks/dagster.py mounts it on the daemon's task "
                    "definition, which EcsRunLauncher copies into every run task)"
                )
        return root.resolve()

    def path(self, relative: str) -> Path:
        """The absolute path of `relative` under the root (which must exist, see `create_root`)."""
        root = self._root()
        path = (root / relative).resolve()
        if root not in path.parents:
            raise ValueError(f"shared file {relative!r} is not inside the shared files root {root}")
        return path

    def write_bytes(self, relative: str, data: bytes) -> WrittenFile:
        """Replace the file at `relative` (its folders created as needed) with `data`, atomically and durably."""
        path = self.path(relative)

        def write(tmp: Path) -> None:
            # open(), not mkstemp(): mkstemp creates the file 0600, and consumers under other users read it.
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the content is on disk before the rename can expose it

        replace_atomically(path, write)
        _fsync_directory(path.parent)
        return WrittenFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    def read_bytes(self, relative: str) -> bytes:
        return self.path(relative).read_bytes()

    def describe(self) -> str:
        return f"shared files at {self.root}"


def _fsync_directory(folder: Path) -> None:
    """Persist a rename in `folder`. A file system that refuses to fsync a directory (EINVAL, ENOTSUP) is left to
    make its renames durable itself, as NFS servers (EFS among them) do: they commit a rename before replying."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
