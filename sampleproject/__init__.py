"""Demo project for lifespan_signals: one shared aiohttp session and httpx client per process."""
