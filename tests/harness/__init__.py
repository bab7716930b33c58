"""The one harness of the tests, the sampleproject's tests and ``bench/``.

- ``catalogue``: the servers (command on port 0, how the port is reported, exit codes, leak and
  "closed" patterns).
- ``servers``: ``ServerProcess`` runs one as a subprocess; it re-exports the ``probes``.
- ``probes``: what tests read from servers (HTTP, events, ports, processes) and polling.
- ``fixtures``: ``serve``, ``events``, ``watched`` (loaded for every test by ``tests/conftest.py``).
- ``in_process``: helpers for the in-process tests (lifespan communicator, scopes, receivers).
- ``postgres``: a private PostgreSQL cluster.
"""
