"""``python -m lifespan_signals.daphne``: the ``lifespan-daphne`` command."""

from __future__ import annotations

from lifespan_signals.daphne.cli import main

if __name__ == "__main__":
    main()
