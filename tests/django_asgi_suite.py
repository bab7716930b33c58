"""Run Django's own ASGI handler tests with ``LifespanASGIHandler`` in place of Django's.

``python -m tests.django_asgi_suite [--threads N]`` (``make django-asgi-suite`` runs it with the
request threads off and on). It fetches the source distribution of the Django installed here
(``pip download``, cached in ``.cache/``), then runs its ``tests/runtests.py asgi`` with
``django.core.asgi.get_asgi_application`` and ``django.core.handlers.asgi.ASGIHandler`` replaced
by this package's, and ``LIFESPAN_SIGNALS_REQUEST_THREADS`` set to N (default: None).
"""

from __future__ import annotations

import argparse
import runpy
import subprocess
import sys
import tarfile
from pathlib import Path

import django

CACHE = Path(__file__).resolve().parent.parent / ".cache"


def django_tests() -> Path:
    """The ``tests`` directory of the installed Django's source distribution."""
    version = django.__version__
    tree = CACHE / f"django-{version}"
    if not (tree / "tests" / "runtests.py").exists():
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
             "--no-deps", "--dest", str(CACHE), f"django=={version}"],
            check=True,
        )  # fmt: skip
        (sdist,) = CACHE.glob(f"[Dd]jango-{version}.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(CACHE, filter="data")
    return tree / "tests"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="request threads to keep")
    parser.add_argument("labels", nargs="*", default=["asgi"], help="test labels (asgi)")
    options = parser.parse_args()
    tests = django_tests()
    settings = tests / "lifespan_signals_settings.py"
    settings.write_text(
        "from test_sqlite import *  # noqa: F403\n\n"
        f"LIFESPAN_SIGNALS_REQUEST_THREADS = {options.threads!r}\n"
    )

    import django.core.asgi
    import django.core.handlers.asgi

    from lifespan_signals import asgi, threads

    # Django's tests subclass ASGIHandler and call get_asgi_application(): both become ours.
    django.core.handlers.asgi.ASGIHandler = asgi.LifespanASGIHandler  # type: ignore[misc]
    django.core.asgi.get_asgi_application = asgi.get_asgi_application  # type: ignore[assignment]
    print(f"Django {django.__version__} {' '.join(options.labels)}: LifespanASGIHandler, "
          f"LIFESPAN_SIGNALS_REQUEST_THREADS = {options.threads!r}", flush=True)  # fmt: skip
    sys.path.insert(0, str(tests))
    sys.argv = [str(tests / "runtests.py"), "--settings=lifespan_signals_settings",
                "--parallel=1", "-v", "2", *options.labels]  # fmt: skip
    code: object = 0
    try:
        runpy.run_path(str(tests / "runtests.py"), run_name="__main__")
    except SystemExit as exit:  # runtests exits 1 on failures
        code = exit.code
    started = next(threads._names) - 1
    print(f"Request threads started: {started}", flush=True)
    if options.threads is not None and not started:
        sys.exit("The request threads were not used: the substitution did not take.")
    sys.exit(code)


if __name__ == "__main__":
    main()
