"""Consumer referral rewards and the consumer's own verification (mini-program)."""
