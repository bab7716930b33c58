"""The package's shape: a cheap import, import contracts that hold and can fail, no cycles, no
private name used across modules, and a logging reference that names the loggers that exist."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lifespan_signals"
OPTIONAL = ("daphne", "twisted", "channels", "aiohttp", "httpx", "redis", "autobahn")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def test_importing_the_package_imports_no_optional_dependency_and_reads_no_setting():
    code = (
        "import sys, lifespan_signals; "
        "dir(lifespan_signals); "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    # A settings module that cannot be imported: reading any Django setting would raise.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "no.such.settings.module"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = set(ast.literal_eval(out.stdout))
    assert not loaded & {*OPTIONAL, "django", "asgiref"}, loaded


def test_the_public_face_re_exports_each_name_from_its_module():
    import lifespan_signals

    for name in lifespan_signals.__all__:
        assert getattr(lifespan_signals, name) is not None, name
    from lifespan_signals.signals import asgi_startup
    from lifespan_signals.state import get_state

    assert lifespan_signals.asgi_startup is asgi_startup
    assert lifespan_signals.get_state is get_state


def test_the_import_contracts_hold():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_the_layers_contract_fails_on_an_import_that_reaches_back_up(tmp_path):
    shutil.copytree(
        PACKAGE, tmp_path / "lifespan_signals", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    state = tmp_path / "lifespan_signals" / "state.py"
    state.write_text(state.read_text() + "\nfrom lifespan_signals import asgi  # noqa\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lifespan_signals.state is not allowed to import lifespan_signals.asgi" in result.stdout


def test_no_import_cycle_between_the_packages_modules():
    graph = grimp.build_graph("lifespan_signals")  # imports inside functions count too
    modules = sorted(graph.modules)
    cycles = []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(imported=module, importer=imported):
                cycles.append(f"{module} <-> {imported}")
    assert cycles == []


def test_no_private_name_is_used_from_another_module():
    modules = _modules()
    crossings = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "lifespan_signals"
            ):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        crossings.append(f"{name}: from {node.module} import {alias.name}")
                    if f"{node.module}.{alias.name}" in modules:
                        aliases.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                aliases |= {a.asname for a in node.names if a.name in modules and a.asname}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                crossings.append(f"{name}: {node.value.id}.{node.attr}")
    assert crossings == []


def _loggers_in_code() -> set[str]:
    names = set()
    for module, path in _modules().items():
        text = path.read_text()
        if "getLogger(__name__)" in text:
            names.add(module)
        names |= set(re.findall(r'getLogger\("([\w.]+)"\)', text))
    return names


def test_the_logging_reference_documents_exactly_the_loggers_that_exist():
    page = (ROOT / "docs" / "reference" / "logging.md").read_text()
    documented = set(re.findall(r"```\{logger\} ([\w.]+)", page))
    assert documented == _loggers_in_code()
