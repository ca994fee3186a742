"""A small, safe evaluator for expressions in case files.

An expression such as ``"100 * exp(-t / 60) * sin(pi * x)"`` is parsed with :mod:`ast`
and compiled into a tree of NumPy operations; nothing is ever passed to ``eval``.
Only numbers, the variables x, y, z, t (and T, the temperature, where a property may depend on
it: ``Expression(text, temperature=True)``), the constants below, arithmetic, comparisons,
``and``/``or``/``not``, ``a if cond else b`` and calls of the listed functions are
accepted; anything else (attribute access, subscripts, lambdas, unknown names,
keyword arguments, strings) is refused with a message.

An expression of T also gives its exact derivative dT (forward-mode automatic differentiation:
every node is evaluated as a pair (value, derivative); :meth:`Expression.with_derivative`),
which the Newton Jacobians of temperature-dependent properties need.
"""

from __future__ import annotations

import ast
import math
import operator

import numpy as np

from solver.case.shown import cut, shown

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
    ast.Div: np.true_divide, ast.Pow: np.power, ast.Mod: np.mod,
}
_COMPARE = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
    ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal,
}
MAX_LENGTH = 2000
MAX_DEPTH = 40


class ExpressionError(ValueError):
    """The expression is not in the accepted language (message says why)."""


SWITCHES = ("floor", "ceil", "sign")  # piecewise-constant functions: they switch, as comparisons do
SIDE = 1e-9  # how far into its step a step's end sees the switches, relative to the step


class StepTime(float):
    """A time at one end of a time step, which sees the switches of t (comparisons, floor, ceil,
    sign and ``%`` of it) from inside the step: ``switch`` is t moved into the step by a billionth
    of it. A step that lands on a switch time therefore takes the values on its own side of the
    switch: a heater on for ``t > 300 and t < 301`` heats the step from 300 to 301, whose ends
    would both see it off, and ``t >= 300`` does not heat the step that ends at 300. Arithmetic
    on t (``5 * t``) takes the time itself."""

    switch: float

    def __new__(cls, t: float, toward: float):
        """Time ``t`` of a step whose other end is ``toward``."""
        obj = super().__new__(cls, t)
        span = toward - t
        shift = max(abs(span) * SIDE, 4 * math.ulp(max(abs(t), abs(toward))))
        obj.switch = float(t + math.copysign(min(shift, 0.5 * abs(span)), span))
        return obj

    def __reduce__(self):  # pickled (sent between ranks) as the plain time
        return float, (float(self),)


def time_stamp(t: float) -> tuple:
    """What a cache of values at time t must compare: the time, and the side from which a
    :class:`StepTime` sees its switches (the two ends of a step at one time see them differently)."""
    return float(t), getattr(t, "switch", None)


class Expression:
    """A compiled expression of x, y, z and t (and T with ``temperature=True``; without t with
    ``time=False``: a value that holds at t = 0), evaluated on NumPy arrays."""

    def __init__(self, text: str | float | int, temperature: bool = False, time: bool = True):
        self._tree = None
        self._dual = None
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            value = _float(text)
            self.text = repr(value)
            self._fn = _constant(value)
            self.names = frozenset()
            return
        if not isinstance(text, str):
            raise ExpressionError(f"expected a number or an expression string, got {shown(text)}")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
        self.text = text
        if "#" in text:  # Python would drop the rest of the line: "20 # + 5*t" would read as 20
            where = excerpt(text.strip(), text.strip().index("#") + 1)
            raise ExpressionError(f"invalid expression {where}: '#' is not part of an expression (no comments)")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError) as exc:
            where = excerpt(text.strip(), getattr(exc, "offset", None))
            raise ExpressionError(f"invalid expression {where}: {exc.msg if hasattr(exc, 'msg') else exc}") from None
        except (RecursionError, MemoryError):
            raise ExpressionError("expression nested too deeply") from None
        names: set[str] = set()
        allowed = tuple(v for v in VARIABLES if time or v != "t") + (("T",) if temperature else ())
        self._fn = _compile(tree.body, names, 0, allowed)
        self.names = frozenset(names)
        self._tree = tree.body
        _refuse_zero_divisors(tree.body, text.strip())

    @property
    def is_constant(self) -> bool:
        return not self.names

    @property
    def depends_on_time(self) -> bool:
        return "t" in self.names

    @property
    def depends_on_temperature(self) -> bool:
        return "T" in self.names

    @property
    def depends_on_space(self) -> bool:
        return bool(self.names & {"x", "y", "z"})

    def switch_times(self) -> tuple[float, ...]:
        """The times at which the expression may switch: the numbers that ``t`` is compared with
        (``t >= 300``, ``300 < t``, ``t <= 2 * 60``), where the other side is constant. Adaptive
        steps land on them: a pulse that starts after the steps have grown is not stepped over."""
        return self._compared_with("t") if self.depends_on_time else ()

    def switch_temperatures(self) -> tuple[float, ...]:
        """The temperatures at which the expression may switch: the numbers that ``T`` is compared
        with, where the other side is constant. A property's enthalpy table keeps them among its
        breaks: a box of c narrower than its samples (``where(T > 100.3 and T < 100.301, ...)``)
        is seen."""
        return self._compared_with("T") if self.depends_on_temperature else ()

    def _compared_with(self, name: str) -> tuple[float, ...]:
        found = set()
        for node in ast.walk(self._tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            for a, b in zip(sides, sides[1:]):
                for side, other in ((a, b), (b, a)):
                    if isinstance(side, ast.Name) and side.id == name:
                        value = _constant_value(other)
                        if value is not None:
                            found.add(value)
        return tuple(sorted(found))

    def hidden_switches(self) -> bool:
        """Whether t switches the expression somewhere :meth:`switch_times` cannot find: a
        comparison of a function of t (``abs(t - 300) < 1``, ``t / 2 >= 150``), or floor, ceil or
        sign of one."""
        if self._tree is None or not self.depends_on_time:
            return False
        for node in ast.walk(self._tree):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                for a, b in zip(sides, sides[1:]):
                    located = any(_is_time(side) and _constant_value(other) is not None
                                  for side, other in ((a, b), (b, a)))
                    if (_has_time(a) or _has_time(b)) and not located:
                        return True
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in SWITCHES:
                if any(_has_time(a) for a in node.args):
                    return True
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _has_time(node):
                return True
        return False

    @staticmethod
    def _env(points, t, T):
        points = np.asarray(points, dtype=float)
        env = {"t": float(t), "T": T, "t_switch": getattr(t, "switch", float(t))}
        for i, name in enumerate(("x", "y", "z")):
            env[name] = points[..., i] if i < points.shape[-1] else 0.0
        return env, points.shape[:-1]

    def __call__(self, points: np.ndarray, t: float = 0.0, T: np.ndarray | float | None = None) -> np.ndarray:
        """Evaluate at ``points`` (shape ``(..., gdim)``), time ``t`` and temperature ``T``
        (broadcast with the points); shape ``points.shape[:-1]``."""
        env, shape = self._env(points, t, T)
        with np.errstate(all="ignore"):
            value = self._fn(env)
        return np.broadcast_to(np.asarray(value, dtype=float), shape)

    def over_time(self, points: np.ndarray, times: np.ndarray, T: np.ndarray | float | None = None) -> np.ndarray:
        """Values at ``points`` (shape ``(n, gdim)``, with ``T`` broadcast with them) at each of
        ``times`` in one vectorised evaluation: shape ``(len(times), n)``. The switches of t
        read each time itself."""
        points = np.asarray(points, dtype=float)
        times = np.asarray(times, dtype=float)[:, None]
        env = {"t": times, "t_switch": times, "T": None if T is None else np.asarray(T, dtype=float)[None, ...]}
        for i, name in enumerate(("x", "y", "z")):
            env[name] = points[None, :, i] if i < points.shape[-1] else 0.0
        with np.errstate(all="ignore"):
            value = self._fn(env)
        return np.broadcast_to(np.asarray(value, dtype=float), (times.shape[0], points.shape[0]))

    def with_derivative(self, points: np.ndarray, t: float, T) -> tuple[np.ndarray, np.ndarray]:
        """(value, d value / dT) at the points, exact (dual numbers); the derivative is 0 for an
        expression without T, and where the value is finite but the derivative is not (a cusp:
        ``sqrt(abs(T - 300))`` at 300; only Newton's Jacobian takes it, never the residual)."""
        env, shape = self._env(points, t, T)
        if self._tree is None or "T" not in self.names:
            with np.errstate(all="ignore"):
                value = self._fn(env)
            return np.broadcast_to(np.asarray(value, dtype=float), shape), np.zeros(shape)
        if self._dual is None:
            self._dual = _dual(self._tree)
        env = {k: (v, 1.0 if k == "T" else 0.0) for k, v in env.items()}
        with np.errstate(all="ignore"):
            value, slope = self._dual(env)
        value = np.broadcast_to(np.asarray(value, dtype=float), shape).copy()
        slope = np.broadcast_to(np.asarray(slope, dtype=float), shape).copy()
        slope[np.isfinite(value) & ~np.isfinite(slope)] = 0.0  # an infinite slope made the Jacobian NaN
        return value, slope

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def _has_time(node) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "t" for n in ast.walk(node))


def _is_time(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "t"


def _float(value) -> float:
    """A number of the input as a double; an integer beyond a double's range is refused."""
    try:
        return float(value)
    except OverflowError:
        raise ExpressionError(f"an integer of {len(str(abs(value)))} digits is beyond a double's range "
                              f"(1.8e308)") from None


def excerpt(text: str, offset: int | None, width: int = 60) -> str:
    """``text`` quoted, or for a long one the part around ``offset`` (1-based, as SyntaxError
    gives it), with the position marked."""
    if len(text) <= 2 * width:
        return repr(text)
    at = min(max((offset or len(text)) - 1, 0), len(text))
    start, stop = max(at - width, 0), min(at + width, len(text))
    return (f"{'...' if start else ''}{text[start:at]} <here> {text[at:stop]}{'...' if stop < len(text) else ''} "
            f"(character {at + 1} of {len(text)})")


def _constant(value):
    return lambda env: value


def _constant_value(node) -> float | None:
    """The value of a subexpression without variables (None: it has some, or no finite value)."""
    names: set = set()
    try:
        fn = _compile(node, names, 0)
    except ExpressionError:
        return None
    if names:
        return None
    with np.errstate(all="ignore"):
        value = float(np.asarray(fn({"t": 0.0, "T": None, "x": 0.0, "y": 0.0, "z": 0.0})))
    return value if np.isfinite(value) else None


def _refuse_zero_divisors(tree, text: str) -> None:
    """A division (or %) by a part without variables that is 0, in any branch: a typo, never
    meant (``max(0, -1/0)`` and ``where(x > 2, 1/0, 1)`` hid it from the values on the mesh)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mod)) and \
                _constant_value(node.right) == 0.0:
            where = excerpt(text, getattr(node.right, "col_offset", -1) + 1)
            raise ExpressionError(f"division by zero in {where}: its divisor is 0 whatever x, y, z, t and T are")


def _compile(node, names: set, depth: int, allowed: tuple = VARIABLES, switch: bool = False):
    """``switch``: inside a comparison or a piecewise-constant function, where t reads as seen
    from inside the step (:class:`StepTime`)."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels (a chain of terms counts a tenth "
                              f"of a level per term)")
    rec = lambda child, inside=switch: _compile(child, names, depth + 1, allowed, inside)  # noqa: E731
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"only numbers are allowed as constants, got {shown(node.value)}")
        return _constant(_float(node.value))  # float: 10**10**10 overflows to inf instead of hanging
    if isinstance(node, ast.Name):
        if node.id in allowed:
            names.add(node.id)
            name = "t_switch" if switch and node.id == "t" else node.id
            return lambda env: env[name]
        if node.id in CONSTANTS:
            return _constant(CONSTANTS[node.id])
        hint = {"T": " (T, the temperature, only in k, rho, c and epsilon)",
                "t": " (t, the time, not in a value that holds at t = 0: an expression of x, y, z only)"}
        hint = hint.get(node.id, "")
        raise ExpressionError(
            f"unknown name {cut(node.id)!r}{hint} (allowed: {', '.join(allowed + tuple(CONSTANTS))})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        # a sum or product of many terms is a left-leaning chain: its links count a tenth of a level
        chained = isinstance(node.left, ast.BinOp)
        jumps = switch or isinstance(node.op, ast.Mod)  # t % 60 falls back at every minute: a switch
        left = _compile(node.left, names, depth + (0.1 if chained else 1), allowed, jumps)
        op, right = _BINARY[type(node.op)], rec(node.right, jumps)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.UnaryOp):
        operand = rec(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: -operand(env)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return lambda env: 1.0 * np.logical_not(operand(env))
    if isinstance(node, ast.Compare):
        ops = [_COMPARE.get(type(op)) for op in node.ops]
        if None in ops:
            raise ExpressionError("only <, <=, >, >=, ==, != comparisons are allowed")
        parts = [rec(node.left, True)] + [rec(c, True) for c in node.comparators]

        def compare(env):
            values = [p(env) for p in parts]
            result = ops[0](values[0], values[1])
            for op, a, b in zip(ops[1:], values[1:], values[2:]):
                result = np.logical_and(result, op(a, b))
            return 1.0 * result  # a number: 1 or 0 (NumPy's booleans would add as "or", and subtract not at all)
        return compare
    if isinstance(node, ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        parts = [rec(v) for v in node.values]

        def boolop(env):
            result = parts[0](env)
            for p in parts[1:]:
                result = combine(result, p(env))
            return 1.0 * result
        return boolop
    if isinstance(node, ast.IfExp):
        cond, a, b = rec(node.test), rec(node.body), rec(node.orelse)
        return lambda env: np.where(cond(env), a(env), b(env))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"only the named functions may be called, not {_describe(node.func)} (allowed: "
                                  f"{', '.join(sorted(FUNCTIONS))})")
        if node.func.id not in FUNCTIONS:
            raise ExpressionError(f"unknown function {cut(node.func.id)!r} (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed")
        name = node.func.id
        arity = _ARITY.get(name, 1)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"{name}(): unpacking with * is not allowed")
        if len(node.args) != arity:
            raise ExpressionError(f"{name}() takes {arity} argument(s), got {len(node.args)}")
        fn, args = FUNCTIONS[name], [rec(a, switch or name in SWITCHES) for a in node.args]
        return lambda env: fn(*(a(env) for a in args))
    raise ExpressionError(f"{_describe(node)} is not allowed in an expression (allowed: numbers, the variables, "
                          f"+ - * / ** %, comparisons, and/or/not, x if c else y, and the functions)")


def _describe(node) -> str:
    """What a refused piece of an expression is, in a user's words."""
    if isinstance(node, ast.BinOp):
        symbol = {ast.FloorDiv: "//", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|",
                  ast.BitXor: "^", ast.MatMult: "@"}.get(type(node.op), type(node.op).__name__)
        return f"the operator {symbol}"
    if isinstance(node, ast.UnaryOp):
        return "the operator ~"
    return {"Lambda": "a lambda", "Attribute": "an attribute (a.b)", "Subscript": "indexing (a[i])",
            "List": "a list", "Tuple": "a tuple", "Dict": "a dict", "Set": "a set", "ListComp": "a comprehension",
            "GeneratorExp": "a generator", "NamedExpr": "an assignment (:=)", "JoinedStr": "a string",
            "Await": "await", "Yield": "yield", "Call": "the result of a call"}.get(type(node).__name__,
                                                                                   type(node).__name__)


# ------------------------------------------------------------------ derivatives (dual numbers)
# Each node of an already validated tree becomes env -> (value, d value / dT). A derivative
# that is the Python float 0.0 is "known zero" and skips work.
_LN10 = float(np.log(10.0))
_DERIVATIVES = {  # f'(a) of the one-argument functions
    "sin": np.cos, "cos": lambda a: -np.sin(a), "tan": lambda a: 1.0 / np.cos(a) ** 2,
    "asin": lambda a: 1.0 / np.sqrt(1.0 - a * a), "acos": lambda a: -1.0 / np.sqrt(1.0 - a * a),
    "atan": lambda a: 1.0 / (1.0 + a * a), "sinh": np.cosh, "cosh": np.sinh,
    "tanh": lambda a: 1.0 - np.tanh(a) ** 2, "exp": np.exp, "log": lambda a: 1.0 / a,
    "log10": lambda a: 1.0 / (a * _LN10), "sqrt": lambda a: 0.5 / np.sqrt(a), "abs": np.sign,
    "floor": None, "ceil": None, "sign": None,  # piecewise constant
}


def _zero(d) -> bool:
    return isinstance(d, float) and d == 0.0


def _dual(node, switch: bool = False):
    """(value, d/dT) of ``node`` on pairs; ``switch``: inside a switch (``t % 60``), where t is
    read as :func:`_compile` reads it (from inside the step, at its end)."""
    rec = lambda child, inside=switch: _dual(child, inside)  # noqa: E731
    if isinstance(node, ast.Constant):
        value = float(node.value)
        return lambda env: (value, 0.0)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            value = CONSTANTS[node.id]
            return lambda env: (value, 0.0)
        name = "t_switch" if switch and node.id == "t" else node.id
        return lambda env: env[name]
    if isinstance(node, ast.BinOp):
        jumps = switch or isinstance(node.op, ast.Mod)  # as in _compile
        left, right, op = rec(node.left, jumps), rec(node.right, jumps), type(node.op)

        def binop(env):
            (a, da), (b, db) = left(env), right(env)
            if op is ast.Add:
                return a + b, da + db
            if op is ast.Sub:
                return a - b, da - db
            if op is ast.Mult:
                return a * b, (0.0 if _zero(da) else da * b) + (0.0 if _zero(db) else a * db)
            if op is ast.Div:
                return (np.true_divide(a, b), (0.0 if _zero(da) else np.true_divide(da, b))
                        - (0.0 if _zero(db) else np.true_divide(a * db, b * b)))
            if op is ast.Mod:
                return np.mod(a, b), (da if _zero(db) else da - np.floor(np.true_divide(a, b)) * db)
            value = np.power(a, b)  # Pow
            d = 0.0 if _zero(da) else b * np.power(a, b - 1.0) * da
            if not _zero(db):
                d = d + value * np.log(a) * db
            return value, d
        return binop
    if isinstance(node, ast.UnaryOp):
        operand = rec(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda env: tuple(-v for v in operand(env))
        if isinstance(node.op, ast.UAdd):
            return operand
        return lambda env: (1.0 * np.logical_not(operand(env)[0]), 0.0)
    if isinstance(node, (ast.Compare, ast.BoolOp)):  # logical values: derivative 0
        plain = _compile(node, set(), 0, VARIABLES + ("T",), switch)
        return lambda env: (plain({k: v[0] for k, v in env.items()}), 0.0)
    if isinstance(node, ast.IfExp):
        cond, a, b = rec(node.test), rec(node.body), rec(node.orelse)

        def ifexp(env):
            c = cond(env)[0]
            (va, da), (vb, db) = a(env), b(env)
            return np.where(c, va, vb), (0.0 if _zero(da) and _zero(db) else np.where(c, da, db))
        return ifexp
    name = node.func.id  # Call (validated)
    if name in SWITCHES:  # piecewise constant: derivative 0, and t as a switch sees it
        plain = _compile(node, set(), 0, VARIABLES + ("T",), switch)
        return lambda env: (plain({k: v[0] for k, v in env.items()}), 0.0)
    args = [rec(a) for a in node.args]
    fn = FUNCTIONS[name]

    def call(env):
        values = [a(env) for a in args]
        v = [x[0] for x in values]
        d = [x[1] for x in values]
        value = fn(*v)
        if all(_zero(x) for x in d):
            return value, 0.0
        if name in ("min", "max"):
            pick = (v[0] <= v[1]) if name == "min" else (v[0] >= v[1])
            return value, np.where(pick, d[0], d[1])
        if name == "where":
            return value, np.where(v[0], d[1], d[2])
        if name == "atan2":  # atan2(y, x)
            r2 = v[0] * v[0] + v[1] * v[1]
            return value, (v[1] * d[0] - v[0] * d[1]) / r2
        slope = _DERIVATIVES[name]
        return value, (0.0 if slope is None else slope(v[0]) * d[0])
    return call
