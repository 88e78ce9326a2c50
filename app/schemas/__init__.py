"""Answer shapes more than one HTTP edge gives (marshmallow schemas over domain objects), so the mini-program
API and the HQ API answer an order or a session alike without importing each other. A layer between the domains
and the edges: it may import core and the domains, never an edge."""
