"""Consumer verification without login: is a printed code genuine, how often was it checked, and a diversion
alert for HQ when a phone checks it far from where it was shipped (its HTTP edge is app/web/public.py)."""
