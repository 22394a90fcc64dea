"""The SFTP partners: which landing prefixes a partner's uploads arrive under (README, "SFTP partners").

A contract that arrives over SFTP names its `landing_prefix` (`landing/sftp/<partner>/<dataset>`); the partner
it names must be one the SFTP server knows, and the server must store that partner's uploads there, or the
contract watches a prefix no upload ever reaches. Locally the answer comes from the SFTP stand-in's registry
(`sources/sftp/<partner>/authorized_keys`, home `landing/sftp/<partner>/`); on AWS from the Transfer Family
server's users (`transfer_aws.AwsTransferPartners`).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

SFTP_LANDING = "landing/sftp/"  # sftp_server.LANDING, the zone every partner's home is in


class UnknownPartner(LookupError):
    """The SFTP server has no such partner: nobody can upload as them."""


class SftpPartners(dg.ConfigurableResource):
    """The SFTP server's partners (AWS Transfer Family users), and where each one's uploads land."""

    def landing_prefixes(self, partner: str) -> list[str]:
        """The key prefixes (ending in `/`) the partner's uploads are stored under; raises UnknownPartner,
        naming how to register them, when the server has no such partner."""
        raise NotImplementedError


def contract_partner(landing_prefix: str) -> str | None:
    """The partner a contract's `landing_prefix` names (`landing/sftp/<partner>/...`), or None if it names none."""
    if not landing_prefix.startswith(SFTP_LANDING):
        return None
    partner, slash, rest = landing_prefix[len(SFTP_LANDING) :].partition("/")
    return partner if partner and slash and rest.strip("/") else None


def inside(landing_prefix: str, prefixes: list[str]) -> bool:
    """Whether every key under `landing_prefix` is under one of `prefixes` (each ending in `/`)."""
    return any(landing_prefix.startswith(p if p.endswith("/") else f"{p}/") for p in prefixes)


class LocalPartners(SftpPartners):
    """The local SFTP stand-in (`lake sftp serve`): a registered partner's `/` is `landing/sftp/<partner>/`.

    Registration is what lets a partner log in (`lake sftp add-partner`; `lake seed` registers the partner it
    plays), as a Transfer Family user is on AWS: files under the home of a partner nobody registered could not
    have come over SFTP.
    """

    lake_root: str = Field(description="The lake root: the SFTP server's registry is under sources/sftp/.")

    def landing_prefixes(self, partner: str) -> list[str]:
        # Imported here: asyncssh (the server's) is not needed to load the definitions.
        from lake_platform.sources.sftp_server import SFTP_DIR, home, partners

        root = Path(self.lake_root)
        if partner not in partners(root):
            raise UnknownPartner(
                f"partner {partner!r} is not registered on the local SFTP server (no"
                f" {root / SFTP_DIR / partner / 'authorized_keys'}): register them with"
                f" `lake sftp add-partner {partner}` (`lake seed` registers the partner it plays)"
            )
        return [f"{home(root, partner).relative_to(root).as_posix()}/"]
