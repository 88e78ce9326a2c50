"""Consumer referral rewards (推荐奖励), off unless HQ switches them on: share links, bindings, rewards, payouts."""
