"""The HQ console: its API (`/api/hq/v1`) and its web pages (`/hq/`)."""
