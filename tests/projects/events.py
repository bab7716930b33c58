"""The projects' side of the events file: ``record()`` appends what happened, as JSON lines, to
the file named by ``LIFESPAN_TEST_EVENTS`` (the harness reads it back: ``read_events``)."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.settings import env


def record(event: str, **data: Any) -> None:
    path = env("LIFESPAN_TEST_EVENTS")
    if path:
        # One small O_APPEND write per line: lines from several processes do not interleave.
        with open(path, "a") as file:
            file.write(json.dumps({"event": event, "pid": os.getpid(), **data}) + "\n")
