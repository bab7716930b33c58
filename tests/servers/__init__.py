"""The package under real ASGI servers: the lifespan once per process, hardening, faults."""
