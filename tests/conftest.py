def pytest_configure(config):
    config.addinivalue_line(
        "markers", "servers: starts real ASGI servers as subprocesses (select with -m servers)"
    )
