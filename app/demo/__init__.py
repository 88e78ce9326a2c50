"""The demo data `scripts/run` loads into an empty database (described in shared/API.md)."""
