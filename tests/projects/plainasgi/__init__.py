"""A project whose asgi.py is Django's own, not lifespan-aware (for checks and runasgi tests)."""
