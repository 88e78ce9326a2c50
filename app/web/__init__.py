"""The app's own HTTP edges besides the mini-program API and the HQ console: health probes, the landing and API
docs pages, the public pages (the printed code's page and the verify API), the WeChat Pay callbacks, and the
security headers every response carries. Each parses, calls one domain service or query, and renders; none
touches the database session or checks access itself. Registered from `app/__init__.py`."""
