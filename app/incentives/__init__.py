"""Scan incentives: HQ pays stores points or fen per verified scan, once per code and step."""
