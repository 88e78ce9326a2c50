"""Training (CHANNEL.md §7). Placeholder on this branch: only the query the assessment reads."""
