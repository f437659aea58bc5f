"""Values in upstream config files: literals and constant arithmetic, bounded, never run."""

from __future__ import annotations

import ast
import re

import pytest

from idle_cull.command.upstream_literals import MAX_DEPTH, NotALiteral, literal_value


def _value(source: str) -> object:
    return literal_value(ast.parse(source, mode="eval").body)


@pytest.mark.parametrize(
    ("source", "value"),
    [
        pytest.param("2 * 60 * 60", 7200, id="int-arithmetic"),
        pytest.param("7200 / 2", 3600.0, id="true-division-is-a-float"),
        pytest.param("1.5 * 3600", 5400.0, id="float-arithmetic"),
        pytest.param("2 ** -1", 0.5, id="negative-exponent"),
        pytest.param("-1", -1, id="negative-literal"),
        pytest.param("'a' 'b'", "ab", id="implicit-string-concatenation"),
        pytest.param("None", None, id="none"),
        pytest.param("[1, (2, 3), {4}]", [1, (2, 3), {4}], id="containers"),
        pytest.param(
            "{'loggers': {'idle': {'level': 10 * 2}}}",
            {"loggers": {"idle": {"level": 20}}},
            id="nested-dict",
        ),
        pytest.param("-(2 ** 62) * 2", -(2**63), id="at-the-bound"),
    ],
)
def test_literals_and_constant_arithmetic(source: str, value: object) -> None:
    assert _value(source) == value


@pytest.mark.parametrize(
    ("source", "fix"),
    [
        pytest.param("-" * (MAX_DEPTH + 1) + "1", "nested more than", id="deep-unary"),
        pytest.param(
            "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2), "nested more than", id="deep-list"
        ),
        pytest.param("+".join(["1"] * (MAX_DEPTH + 2)), "nested more than", id="long-sum"),
        pytest.param("2 ** 65", "an exponent beyond", id="huge-exponent"),
        pytest.param("2 ** 63 * 2", "beyond ±2**63", id="huge-product"),
        pytest.param("1e308 * 10", "beyond ±2**63", id="huge-float"),
        pytest.param("1e999 - 1e999", "not give a finite number", id="infinity"),
        pytest.param("(-8) ** 0.5", "complex number", id="complex"),
        pytest.param("1 % 0", "division by zero", id="modulo-by-zero"),
        pytest.param("0 ** -1", "division by zero", id="zero-to-negative-power"),
        pytest.param("True + 1", "numbers only", id="bool-is-not-a-number"),
        pytest.param("'x' * 10", "numbers only", id="string-repetition"),
        pytest.param("1 << 80", "only + - * / // % **", id="shift"),
        pytest.param("b'x'", "bytes values mean nothing here", id="bytes"),
        pytest.param("{**other}", "cannot unpack another", id="dict-unpacking"),
        pytest.param("{[1]: 2}", "cannot be a dict key", id="unhashable-key"),
        pytest.param("{[]}", "cannot be a dict key or a set item", id="unhashable-set-item"),
        pytest.param("os.environ['T']", "needs code to run", id="subscript"),
        pytest.param("[x for x in y]", "needs code to run", id="comprehension"),
        pytest.param("__import__('os').system('id')", "a call needs code to run", id="call"),
    ],
)
def test_everything_else_is_refused_with_what_to_write(source: str, fix: str) -> None:
    with pytest.raises(NotALiteral, match=re.escape(fix)):
        _value(source)
