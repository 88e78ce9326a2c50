"""People and what they may do: users, role bindings, login."""
