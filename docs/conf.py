"""Sphinx configuration: Markdown pages (MyST), reference tables generated from the code.

``./scripts/test`` builds with ``-W --keep-going``: a broken cross-reference, a missing
page or a reference table that no longer renders fails the build.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]  # this checkout's idle_cull first

from idle_cull import __version__  # noqa: E402

project = "idle-cull"
author = "the idle-cull authors"
copyright = "the idle-cull authors"
version = release = __version__

extensions = ["myst_parser", "idle_cull_reference"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]

myst_heading_anchors = 3  # [text](page.md#a-heading) links are checked
myst_all_links_external = False  # relative links must name a page or a heading that exists
nitpicky = True
smartquotes = False  # keep "--flag" as typed: an en dash would not be a flag

html_theme = "alabaster"
html_title = f"idle-cull {__version__}"
html_theme_options = {"description": "One-shot culler for JupyterHub"}
