"""Sphinx configuration for the lifespan_signals documentation (MyST Markdown, furo theme)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# autodoc imports the package, which needs configured Django settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

import lifespan_signals  # noqa: E402 - after django.setup()

project = "lifespan_signals"
author = "lifespan_signals contributors"
copyright = "lifespan_signals contributors"
version = release = lifespan_signals.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Every cross-reference inside the project must resolve. Names from Python, Django, asgiref and
# the servers have no inventory here (the build works offline, with no intersphinx): they are
# shown as plain code.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!lifespan_signals\b).*"),
    # Type variables of the package's decorators: not documented on their own.
    (r"py:class", r"lifespan_signals\.\w+\.F"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": False}

html_theme = "furo"
html_title = f"lifespan_signals {release}"
html_static_path = ["_static"]
html_css_files: list[str] = []


# autodoc writes reStructuredText, which a MyST directive fence would parse as Markdown: run the
# autodoc directives of Markdown pages through ```{eval-rst}, so ```{autofunction} x``` just works.
_AUTODOC_FENCE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>auto\w+)\}[ \t]*(?P<args>[^\n]*)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def _autodoc_as_rst(match: re.Match[str]) -> str:
    body = "".join(
        f"   {line}" if line.strip() else "\n" for line in match["body"].splitlines(True)
    )
    return f"```{{eval-rst}}\n.. {match['name']}:: {match['args']}\n{body}```"


def _rewrite_autodoc_fences(app, docname, source):  # type: ignore[no-untyped-def]
    if app.env.doc2path(docname).suffix == ".md":
        source[0] = _AUTODOC_FENCE.sub(_autodoc_as_rst, source[0])


_UNPARSED = re.compile(r"\.\. [\w:-]+::")


def _check_unparsed_rst(app, doctree):  # type: ignore[no-untyped-def]
    """Fail on reStructuredText shown as text: what autodoc makes inside a MyST directive fence."""
    from docutils import nodes
    from sphinx.util import logging

    for paragraph in doctree.findall(nodes.paragraph):
        text = paragraph.astext()
        if _UNPARSED.match(text):
            logging.getLogger(__name__).warning(
                "reStructuredText shown as text: %r. Put autodoc directives in an "
                "```{eval-rst} block (.. autofunction:: ...), not in a MyST directive fence.",
                text.splitlines()[0],
                location=paragraph,
            )


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("source-read", _rewrite_autodoc_fences)
    app.connect("doctree-read", _check_unparsed_rst)
    # Settings, system checks: each entry goes into the general index, as Django's docs do.
    app.add_crossref_type("setting", "setting", indextemplate="pair: %s; setting")
    app.add_crossref_type("check", "check", indextemplate="pair: %s; system check")
    app.add_crossref_type("logger", "logger", indextemplate="pair: %s; logger")
