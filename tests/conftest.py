def pytest_configure(config):
    config.addinivalue_line(
        "markers", "servers: starts real ASGI servers as subprocesses (select with -m servers)"
    )
    config.addinivalue_line("markers", "faults: the fault suite, tests/test_faults.py (-m faults)")
