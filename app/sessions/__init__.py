"""Sessions: login, the session answer, invite redemption, logout (`flows.py`)."""
