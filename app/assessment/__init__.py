"""Assessment, tiers and rebates (返点), CHANNEL.md §8: a scheme per month, the close that scores every partner,
places it in a tier and writes its rebate to a ledger, recomputes with a reason, and the statements."""
