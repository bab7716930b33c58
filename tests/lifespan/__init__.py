"""The lifespan engine in process: the protocol, receivers, resources, every exit path."""
