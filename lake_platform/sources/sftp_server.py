"""The partners' SFTP server: the local stand-in for an S3-backed AWS Transfer Family server.

Each partner logs in with a key (never a password) and sees `/`, logically mapped to
`<lake>/landing/sftp/<partner>/`, as a Transfer Family user with a LOGICAL home directory does: `/x.csv`
lands at `landing/sftp/<partner>/x.csv`, and no path leads out of the home (`/..` is `/`, as in a
chroot). Like an S3 object, an upload becomes visible only when the client closes it: the bytes go to
`sources/sftp/partial/` (outside landing) and are renamed into place on close; an upload cut off by a
lost connection or a killed client is dropped. A landed file's time is when it arrived (the close), and no
request changes it or its mode (S3 keeps neither: Transfer Family's SetStatOption=ENABLE_NO_OP). A name
that is not UTF-8 is refused, as S3 object keys are UTF-8. Sessions end with exit status 0, which OpenSSH's
`scp` (SFTP mode, OpenSSH >= 9) requires to report success; legacy `scp -O` (an exec) stays refused.

Keys live beside the other source systems: `sources/sftp/ssh_host_key` (made once) and
`sources/sftp/<partner>/authorized_keys` (OpenSSH format, re-read at each login).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import sys
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh import FXF_APPEND, FXF_EXCL, FXF_READ, FXF_WRITE

SFTP_DIR = "sources/sftp"
LANDING = "landing/sftp"
# Transfer Family's rule for user names; it also keeps a name from being a path (`..`, `a/b`).
PARTNER_NAME = re.compile(r"^[\w][\w@.-]{2,99}$")


def home(lake_root: Path, partner: str) -> Path:
    """Where a partner's `/` is stored: `<lake>/landing/sftp/<partner>`."""
    return lake_root / LANDING / _checked(partner)


def partner_dir(lake_root: Path, partner: str) -> Path:
    return lake_root / SFTP_DIR / _checked(partner)


def _checked(partner: str) -> str:
    if not PARTNER_NAME.match(partner):
        raise ValueError(f"{partner!r} is not a valid partner name (3-100 of letters, digits, _ @ . -)")
    return partner


def host_key(lake_root: Path) -> asyncssh.SSHKey:
    """The server's host key, generated on first use so clients see the same host across restarts."""
    path = lake_root / SFTP_DIR / "ssh_host_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(path)
        path.chmod(0o600)
    return asyncssh.read_private_key(path)


@dataclass
class PartnerKeys:
    authorized_keys: Path
    private_key: Path | None  # set when the key pair was generated here


def add_partner(lake_root: Path, partner: str, public_key: Path | None = None) -> PartnerKeys:
    """Register a partner: authorize `public_key`, or generate a key pair for them when none is given.

    The generated private key stays at `sources/sftp/<partner>/id_ed25519`: locally the simulator plays
    the partner and needs it; a real partner keeps theirs and sends only the public key.
    """
    folder = partner_dir(lake_root, partner)
    private = None
    if public_key is None:
        private = folder / "id_ed25519"
        if not private.exists():
            folder.mkdir(parents=True, exist_ok=True)
            key = asyncssh.generate_private_key("ssh-ed25519", comment=f"{partner}@lake_platform")
            key.write_private_key(private)
            private.chmod(0o600)  # OpenSSH refuses a private key others can read
            key.write_public_key(f"{private}.pub")
        public_key = Path(f"{private}.pub")
    try:  # read first: a file that is not a public key fails before anything is written
        line = asyncssh.read_public_key(public_key).export_public_key().decode().strip()
    except asyncssh.KeyImportError as exc:
        raise ValueError(f"{public_key} is not a public key ({exc})") from exc
    authorized = folder / "authorized_keys"
    known = authorized.read_text().splitlines() if authorized.exists() else []
    if line.split()[:2] not in [k.split()[:2] for k in known]:
        folder.mkdir(parents=True, exist_ok=True)
        staged = folder / "authorized_keys.new"  # renamed in whole: a login never reads half a file
        staged.write_text("".join(f"{k}\n" for k in [*known, line]))
        os.replace(staged, authorized)
    home(lake_root, partner).mkdir(parents=True, exist_ok=True)
    return PartnerKeys(authorized, private)


def partners(lake_root: Path) -> list[str]:
    folder = lake_root / SFTP_DIR
    return sorted(p.parent.name for p in folder.glob("*/authorized_keys")) if folder.is_dir() else []


def connect_help(lake_root: Path, host: str, port: int) -> str:
    """How each registered partner connects with OpenSSH's `sftp`, for `lake sftp serve` to print."""
    fingerprint = host_key(lake_root).get_fingerprint()
    lines = [f"SFTP server (local AWS Transfer Family) on {host}:{port}, host key {fingerprint}"]
    for partner in partners(lake_root):
        generated = partner_dir(lake_root, partner) / "id_ed25519"
        key = generated if generated.exists() else "<the partner's private key>"
        lines += [
            f"  {partner}: `/` is {home(lake_root, partner)}/",
            f"    sftp -P {port} -i {key} {partner}@{host}",
        ]
    if len(lines) == 1:
        lines.append("  no partner can log in yet: `lake sftp add-partner NAME [--public-key FILE]`")
    return "\n".join(lines)


class _Upload(io.FileIO):
    """An upload in progress: a temporary file that becomes `target` when the client closes it."""

    def __init__(self, temporary: Path, target: bytes):
        super().__init__(temporary, "w")
        self.target = target


class PartnerSftp(asyncssh.SFTPServer):
    """One partner's SFTP session, confined to their home, with S3's whole-object semantics."""

    def __init__(self, chan: asyncssh.SSHServerChannel, lake_root: Path):
        self._lake_root = lake_root
        root = home(lake_root, chan.get_extra_info("username"))
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(chan, chroot=bytes(root))

    def map_path(self, path: bytes) -> bytes:
        # Every request naming a path comes through here. SFTP names are any bytes, S3 keys are UTF-8:
        # such a file could not be stored on AWS, and landed here it would break the pipeline later.
        try:
            path.decode("utf-8")
        except UnicodeDecodeError:
            shown = path.decode("utf-8", errors="backslashreplace")
            raise asyncssh.SFTPInvalidFilename(
                f"{shown}: file name is not valid UTF-8: S3 object keys are UTF-8"
            ) from None
        return super().map_path(path)

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if not pflags & FXF_WRITE:
            return super().open(path, pflags, attrs)
        target = self.map_path(path)
        exists = os.path.lexists(target)
        # Transfer Family on S3 has no append or in-place writes: an object is written whole, once. Opening
        # for write without TRUNC replaces the object too: OpenSSH's scp (SFTP mode) opens an existing file
        # that way and truncates it at the end (a no-op here: the upload starts empty).
        if pflags & (FXF_READ | FXF_APPEND):
            raise asyncssh.SFTPOpUnsupported("append, resume and in-place writes are not supported")
        if os.path.isdir(target):
            raise asyncssh.SFTPFailure(f"{path.decode(errors='replace')} is a directory")
        if exists and pflags & FXF_EXCL:
            raise asyncssh.SFTPFileAlreadyExists(f"{path.decode(errors='replace')} already exists")
        partial = self._lake_root / SFTP_DIR / "partial"
        partial.mkdir(parents=True, exist_ok=True)
        return _Upload(partial / f"{uuid.uuid4().hex}.part", target)

    def close(self, file_obj: object) -> None:
        file_obj.close()  # type: ignore[attr-defined]
        if not isinstance(file_obj, _Upload):
            return
        # A file still open when the session ends is an upload cut short (client killed, connection
        # lost): Transfer Family calls it a partial upload, and it must not land as if it were complete.
        # asyncssh (2.24) closes such files from its session handler's `_cleanup` through this same method
        # and offers no public flag for it, hence the caller check; tests/test_sftp.py guards it.
        if self.channel.is_closing() or sys._getframe(1).f_code.co_name == "_cleanup":
            os.unlink(file_obj.name)
            return
        target = Path(os.fsdecode(file_obj.target))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)  # S3 has no directories to create first
            os.utime(file_obj.name)  # S3's last-modified: when the object arrived, whatever the client said
            os.replace(file_obj.name, target)
        except OSError as exc:
            os.unlink(file_obj.name)
            raise asyncssh.SFTPFailure(f"cannot store the upload: {exc.strerror}") from exc

    # Transfer Family's SetStatOption=ENABLE_NO_OP: a request to set attributes (`chmod`, `chmod -h`,
    # `chown`, `chgrp`, `put -p`'s times, a truncate) succeeds and changes nothing. The landing sensors read
    # a file's mtime as the object's last-modified time: a client that could backdate it would hide it.
    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.map_path(path)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:  # lsetstat@openssh.com
        self.map_path(path)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        return None

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        os.mkdir(self.map_path(path))  # the client's permissions are ignored: S3 keeps no modes

    # On S3 a rename is a copy then a delete: the new object's last-modified is the time of the rename.
    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        super().rename(oldpath, newpath)
        self._arrived(newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        super().posix_rename(oldpath, newpath)
        self._arrived(newpath)

    def _arrived(self, path: bytes) -> None:
        local = self.map_path(path)
        if not os.path.isdir(local):
            os.utime(local, follow_symlinks=False)
            return
        for folder, _, names in os.walk(local):
            for name in names:
                os.utime(os.path.join(folder, name), follow_symlinks=False)

    def exit(self) -> None:
        # OpenSSH's sftp-server is a process whose exit status sshd reports; asyncssh closes the channel
        # without one, and OpenSSH's `scp` (SFTP mode) then fails ("Exit status -1", status 1) after a good
        # upload. No-op when the channel is already closing (a lost connection).
        self.channel.exit(0)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("links are not supported")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPOpUnsupported("links are not supported")


class _PartnerLogin(asyncssh.SSHServer):
    """Public-key login only, against `sources/sftp/<partner>/authorized_keys` read at each login."""

    def __init__(self, lake_root: Path):
        self._lake_root = lake_root

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        keys = self._lake_root / SFTP_DIR / username / "authorized_keys"
        known = PARTNER_NAME.match(username) and keys.exists()
        self._conn.set_authorized_keys(str(keys) if known else None)  # type: ignore[arg-type]
        return True  # always ask: an unknown partner fails the key check like a known one with a wrong key

    def public_key_auth_supported(self) -> bool:
        return True


async def listen(lake_root: Path, host: str = "127.0.0.1", port: int = 2222) -> asyncssh.SSHAcceptor:
    """Start accepting SFTP sessions (and nothing else: no shell, exec, scp or forwarding)."""
    return await asyncssh.listen(
        host,
        port,
        server_host_keys=[host_key(lake_root)],
        server_factory=lambda: _PartnerLogin(lake_root),
        sftp_factory=lambda chan: PartnerSftp(chan, lake_root),
        authorized_client_keys=None,
        config=None,  # no sshd_config or ~/.ssh: the lake's files are the whole configuration
        agent_forwarding=False,
        allow_scp=False,
    )


class SftpServer:
    """The server on its own event-loop thread, for code that is not async (tests, the simulator).

    `with SftpServer(lake_root) as server:` listens on an ephemeral loopback port, `server.port`.
    """

    def __init__(self, lake_root: Path, host: str = "127.0.0.1", port: int = 0):
        self.lake_root, self.host, self.port = lake_root, host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sftp-server", daemon=True)

    def __enter__(self) -> SftpServer:
        self._thread.start()
        self._acceptor = self.call(listen(self.lake_root, self.host, self.port))
        self.port = self._acceptor.get_port()
        return self

    def __exit__(self, *_: object) -> None:
        # Closed on the loop's own thread: asyncio servers are not thread-safe (closing one from the caller's
        # thread raced the loop and failed now and then with "'NoneType' object is not iterable").
        self.call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _close(self) -> None:
        self._acceptor.close()
        await self._acceptor.wait_closed()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run `coroutine` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def known_hosts(self) -> asyncssh.SSHKnownHosts:
        public = host_key(self.lake_root).export_public_key().decode().strip()
        return asyncssh.import_known_hosts(f"[{self.host}]:{self.port} {public}\n")

    async def connect(self, partner: str, private_key: Path) -> asyncssh.SSHClientConnection:
        """A client session as `partner`, checking this server's host key."""
        return await asyncssh.connect(
            self.host,
            self.port,
            username=partner,
            client_keys=[str(private_key)],
            known_hosts=self.known_hosts(),
            config=None,
            agent_path=None,
            preferred_auth="publickey",
        )


def upload_as_partner(lake_root: Path, partner: str, name: str, data: bytes) -> Path:
    """Upload `data` to `/<name>` as `partner` through a real SFTP session with an in-process server.

    The partner is registered with a generated key first if needed. Returns where the file landed.
    """
    key = partner_dir(lake_root, partner) / "id_ed25519"
    if not key.exists():
        add_partner(lake_root, partner)

    async def upload(server: SftpServer) -> None:
        async with await server.connect(partner, key) as conn, conn.start_sftp_client() as sftp:
            async with sftp.open(name, "wb") as remote:
                await remote.write(data)

    with SftpServer(lake_root) as server:
        server.call(upload(server))
    return home(lake_root, partner) / name.lstrip("/")
