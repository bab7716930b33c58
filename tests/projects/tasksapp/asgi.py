from lifespan_signals.asgi import get_asgi_application

application = get_asgi_application()
