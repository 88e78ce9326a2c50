"""What a consumer sees without logging in: the printed code's page and verification."""
