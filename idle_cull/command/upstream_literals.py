"""The value of one setting in an upstream config file, computed without running anything.

Upstream runs its ``idle_culler_config.py``, so operators write what Python allows:
``2 * 60 * 60`` for two hours, ``{}`` for an empty ``logging_config``. idle-cull reads the
file's syntax tree instead and computes only what needs no code: literals (numbers,
strings, ``True``/``False``/``None``, lists, tuples, sets and dicts of them) and
arithmetic (``+ - * / // % **``) on numbers. Every step is bounded (nesting depth,
exponent, magnitude), so a hostile file costs microseconds, never memory or a traceback.
Anything else (names, calls, attributes, comprehensions) is refused with what to write
instead.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

__all__ = ["MAX_DEPTH", "MAX_MAGNITUDE", "NotALiteral", "literal_value"]

MAX_DEPTH = 16  # nesting of a value: 2 * 60 * 60 is 2 deep, a logging_config dict 4 or 5
MAX_MAGNITUDE = 2**63  # no setting means anything beyond a 64-bit integer
_MAX_EXPONENT = 64

_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_LOWERCASE_CONSTANTS = {"true": "True", "false": "False", "none": "None", "null": "None"}


class NotALiteral(ValueError):
    """The value needs running code (or unbounded work) to compute; ``fix`` says what to
    write instead, completing "must be written as a value: ..."."""

    def __init__(self, fix: str) -> None:
        super().__init__(fix)
        self.fix = fix


def literal_value(node: ast.expr, depth: int = 0) -> object:
    """The value ``node`` denotes, if it is a literal or constant arithmetic on numbers.

    Raises ``NotALiteral`` for anything else, and for values nested deeper than
    ``MAX_DEPTH`` or arithmetic beyond ``MAX_MAGNITUDE`` (no recursion beyond that depth,
    no huge intermediate numbers).
    """
    if depth > MAX_DEPTH:
        raise NotALiteral(f"nested more than {MAX_DEPTH} deep; write the value itself")
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        number = _number(literal_value(node.operand, depth + 1))
        return _bounded(-number if isinstance(node.op, ast.USub) else +number)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left = _number(literal_value(node.left, depth + 1))
        right = _number(literal_value(node.right, depth + 1))
        return _arithmetic(node.op, left, right)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [literal_value(item, depth + 1) for item in node.elts]
        if isinstance(node, ast.Set):
            return {_key(item) for item in items}
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        return _dict(node, depth)
    raise NotALiteral(_instead(node))


def _constant(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise NotALiteral(
        f"{type(value).__name__} values mean nothing here; write a number or a string"
    )


def _number(value: object) -> int | float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _bounded(value)
    raise NotALiteral(f"arithmetic is computed on numbers only, not on {value!r}")


def _bounded(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise NotALiteral("the arithmetic does not give a finite number; write the value itself")
    if abs(value) > MAX_MAGNITUDE:
        raise NotALiteral("the arithmetic goes beyond ±2**63; write the value itself")
    return value


def _arithmetic(op: ast.operator, left: int | float, right: int | float) -> int | float:
    if isinstance(op, ast.Pow) and abs(right) > _MAX_EXPONENT:
        raise NotALiteral(f"an exponent beyond ±{_MAX_EXPONENT}; write the value itself")
    try:
        result = _ARITHMETIC[type(op)](left, right)
    except ZeroDivisionError:
        raise NotALiteral("a division by zero; write the value itself") from None
    except OverflowError:
        raise NotALiteral("the arithmetic goes beyond ±2**63; write the value itself") from None
    if isinstance(result, complex):  # a negative number to a fractional power
        raise NotALiteral("the arithmetic gives a complex number; write the value itself")
    return _bounded(result)


def _dict(node: ast.Dict, depth: int) -> dict[object, object]:
    result: dict[object, object] = {}
    for key_node, value_node in zip(node.keys, node.values, strict=True):
        if key_node is None:  # {**other}
            raise NotALiteral("a dict cannot unpack another (**); write its items")
        key = _key(literal_value(key_node, depth + 1))
        result[key] = literal_value(value_node, depth + 1)
    return result


def _key(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise NotALiteral(f"{value!r} cannot be a dict key or a set item; write a string or a number")


def _instead(node: ast.expr) -> str:
    """What to write instead of an expression that needs code to compute."""
    if isinstance(node, ast.Name):
        proper = _LOWERCASE_CONSTANTS.get(node.id.lower())
        if proper is not None:
            return f"{node.id} is not a Python value; write {proper}"
        return f"{node.id} is a name, and idle-cull runs no code to look it up; write its value"
    if isinstance(node, ast.Call):
        return "a call needs code to run; write its result (e.g. write 7200, not int('7200'))"
    if isinstance(node, ast.BinOp):
        return "only + - * / // % ** on numbers are computed; write the value itself"
    return "an expression needs code to run; write its value (e.g. write 7200)"
