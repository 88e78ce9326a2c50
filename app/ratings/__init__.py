"""Store ratings of the distributor serving them (CHANNEL.md §6)."""
