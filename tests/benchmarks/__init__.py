"""Benchmarks of idle-cull at hub scale; not part of the default test run.

Run them all with ``./scripts/bench`` (which also creates ``.venv-bench`` with the
upstream ``jupyterhub-idle-culler``), or one section with
``python -m tests.benchmarks.<name>``; see ``tests/benchmarks/README.md``.

This package must stay importable by the bench venv's interpreter, which has neither
idle-cull nor requests: ``upstream_pass`` is run there and imports only the standard
library and the upstream culler. Keep this file free of imports.
"""
