"""The exception tree (``idle_cull.errors``): what it exports and what its docstring draws."""

from __future__ import annotations

import inspect
import re

from idle_cull import errors


def test_errors_module_exports_exactly_its_exception_classes() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert sorted(errors.__all__) == sorted(defined)


def test_every_exception_class_is_drawn_in_the_tree() -> None:
    drawn = re.findall(r"^\s+(?:[│├└─ ]+)?(\w+)(?: |$)", errors.__doc__ or "", flags=re.MULTILINE)
    assert sorted(drawn) == sorted(errors.__all__)
