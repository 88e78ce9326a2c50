"""Training (CHANNEL.md §7): courses of lessons and a quiz, per-user progress, completions tied to a version."""
