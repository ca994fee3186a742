"""A small, safe evaluator for expressions in case files.

An expression such as ``"100 * exp(-t / 60) * sin(pi * x)"`` is parsed with :mod:`ast`
and compiled into a tree of NumPy operations; nothing is ever passed to ``eval``.
Only numbers, the variables x, y, z, t, the constants below, arithmetic, comparisons,
``and``/``or``/``not``, ``a if cond else b`` and calls of the listed functions are
accepted; anything else (attribute access, subscripts, lambdas, unknown names,
keyword arguments, strings) is refused with a message.
"""

from __future__ import annotations

import ast
import operator

import numpy as np

VARIABLES = ("x", "y", "z", "t")
CONSTANTS = {"pi": np.pi, "e": np.e}
FUNCTIONS = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "exp": np.exp, "log": np.log, "log10": np.log10, "sqrt": np.sqrt,
    "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "sign": np.sign,
    "min": np.minimum, "max": np.maximum, "where": np.where,
}
_ARITY = {"atan2": 2, "min": 2, "max": 2, "where": 3}
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: np.power, ast.Mod: np.mod,
}
_COMPARE = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
    ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
MAX_LENGTH = 2000
MAX_DEPTH = 40


class ExpressionError(ValueError):
    """The expression is not in the accepted language (message says why)."""


class Expression:
    """A compiled expression of x, y, z and t, evaluated on NumPy arrays."""

    def __init__(self, text: str | float | int):
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            self.text = repr(float(text))
            self._fn = _constant(float(text))
            self.names = frozenset()
            return
        if not isinstance(text, str):
            raise ExpressionError(f"expected a number or an expression string, got {text!r}")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError) as exc:
            raise ExpressionError(f"invalid expression {text!r}: {exc.msg if hasattr(exc, 'msg') else exc}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError("expression nested too deeply") from None
        names: set[str] = set()
        self._fn = _compile(tree.body, names, 0)
        self.names = frozenset(names)

    @property
    def is_constant(self) -> bool:
        return not self.names

    @property
    def depends_on_time(self) -> bool:
        return "t" in self.names

    def __call__(self, points: np.ndarray, t: float = 0.0) -> np.ndarray:
        """Evaluate at ``points`` (shape ``(..., gdim)``) and time ``t``; shape ``points.shape[:-1]``."""
        points = np.asarray(points, dtype=float)
        shape = points.shape[:-1]
        env = {"t": float(t)}
        for i, name in enumerate(("x", "y", "z")):
            env[name] = points[..., i] if i < points.shape[-1] else 0.0
        with np.errstate(all="ignore"):
            value = self._fn(env)
        return np.broadcast_to(np.asarray(value, dtype=float), shape)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def _constant(value):
    return lambda env: value


def _compile(node, names: set, depth: int):
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
    rec = lambda child: _compile(child, names, depth + 1)  # noqa: E731
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"only numbers are allowed as constants, got {node.value!r}")
        value = float(node.value)  # float: 10**10**10 overflows to inf instead of hanging
        return _constant(value)
    if isinstance(node, ast.Name):
        if node.id in VARIABLES:
            names.add(node.id)
            name = node.id
            return lambda env: env[name]
        if node.id in CONSTANTS:
            return _constant(CONSTANTS[node.id])
        raise ExpressionError(
            f"unknown name {node.id!r} (allowed: {', '.join(VARIABLES + tuple(CONSTANTS))})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op, left, right = _BINARY[type(node.op)], rec(node.left), rec(node.right)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.UnaryOp):
        operand = rec(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return lambda env: np.logical_not(operand(env))
    if isinstance(node, ast.Compare):
        ops = [_COMPARE.get(type(op)) for op in node.ops]
        if None in ops:
            raise ExpressionError("only <, <=, >, >=, ==, != comparisons are allowed")
        parts = [rec(node.left)] + [rec(c) for c in node.comparators]

        def compare(env):
            values = [p(env) for p in parts]
            result = ops[0](values[0], values[1])
            for op, a, b in zip(ops[1:], values[1:], values[2:]):
                result = np.logical_and(result, op(a, b))
            return result
        return compare
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        parts = [rec(v) for v in node.values]

        def boolop(env):
            result = parts[0](env)
            for p in parts[1:]:
                result = combine(result, p(env))
            return result
        return boolop
    if isinstance(node, ast.IfExp):
        cond, a, b = rec(node.test), rec(node.body), rec(node.orelse)
        return lambda env: np.where(cond(env), a(env), b(env))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:40]
            raise ExpressionError(
                f"unknown function {what!r} (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed")
        name = node.func.id
        arity = _ARITY.get(name, 1)
        if len(node.args) != arity or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{name}() takes {arity} argument(s), got {len(node.args)}")
        fn, args = FUNCTIONS[name], [rec(a) for a in node.args]
        return lambda env: fn(*(a(env) for a in args))
    raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")
