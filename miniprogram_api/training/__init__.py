"""Training courses for partner staff and store users (CHANNEL.md §7)."""
