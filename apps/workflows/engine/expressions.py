"""A small, safe expression language for filter conditions, map expressions and distinct keys.

Text is tokenized, parsed by recursive descent into an AST of frozen dataclasses, and evaluated against one
record (any JSON value). Nothing is ever handed to ``eval``/``exec``: the only things an expression can do
are the operators and functions listed here.

Grammar, loosest binding first::

    or        a or b, a || b
    and       a and b, a && b
    not       not a, !a            (binds looser than comparisons: ``not age > 3`` is ``not (age > 3)``)
    compare   == != > >= < <= contains startsWith endsWith in   (one per level; ``a < b < c`` is an error)
    additive  + -                  (``+`` also joins two strings)
    term      * / %
    unary     -x
    primary   42, 4.5, 'text', "text" (backslash escapes), true, false, null, [1, 'a'], (expr),
              field paths (``user.name``, ``items.0``), the record itself (``value`` or ``$``),
              function calls: upper lower trim len str int float round abs concat coalesce exists

Semantics are strict, so that a mistake shows up as an error rather than as silently dropped rows:
``and``/``or``/``not`` and a filter's condition need booleans; ``< > <= >=`` compare numbers with numbers
and strings with strings; ``==``/``!=`` compare any JSON values (``1 == 1.0``, ``true != 1``); a missing
field, a type mismatch and a division by zero raise ``EvaluationError``. ``value`` means the record, unless
the record is an object with a key named ``"value"``, in which case it means that field (``$`` always means
the record). ``coalesce`` treats a missing field argument as null; ``exists('a.b')`` tests a path.

Compatibility with the original product: its filter conditions were bare operators applied to the record
(``"> 50"``, ``"< 10"``, ``"contains 'abc'"``), comparing the record's first comma-separated field as a
double. So a condition that *starts* with a comparison operator applies to the record itself (``"> 50"``
means ``value > 50``), and in that leading comparison only, when the right side is a number and the record
is a string, the record is read as a number if it is one (``"60"``) or if its first comma-separated field
is one (``"12,foo,bar"`` compares as 12); and ``contains``/``startsWith``/``endsWith`` with a string read a
number record as its text (``"contains '5'"`` keeps 15: the original's sequences were strings). Everywhere
else a numeric string is still a string and a number is still a number.

Error positions are 0-based character offsets into the expression text.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, TypeAlias

# Bounds that keep parsing and the recursive evaluator far from Python's recursion limit.
MAX_NESTING = 40
MAX_DEPTH = 200
# Bounds on what one expression may build, so that no record or definition can make a node hang or exhaust
# a worker's memory (docs/nodes.md, "Expression limits"). MAX_INT_DIGITS is Python's own limit for turning an
# integer into text (sys.get_int_max_str_digits), which JSON output needs.
MAX_EXPRESSION_LENGTH = 100_000
MAX_INT_DIGITS = 4300
MAX_ROUND_DIGITS = 100
MAX_TEXT_LENGTH = 10_000_000
MAX_ARRAY_LENGTH = 1_000_000
_INT_LIMIT = 10**MAX_INT_DIGITS  # the smallest integer with one digit too many


class ExpressionError(ValueError):
    """The text is not a valid expression; ``position`` is where the parser gave up (0-based)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class EvaluationError(ValueError):
    """A valid expression could not be evaluated against a record (missing field, wrong type, ...)."""


class MissingFieldError(EvaluationError):
    """A field path does not exist in the record."""


# --- AST -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class ArrayOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Negate:
    operand: Expr


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class Logic:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Arith:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    lenient: bool = False  # the original product's leading-operator form; see the module docstring


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]


Expr: TypeAlias = Const | ArrayOf | Field | Negate | Not | Logic | Arith | Compare | Call

RECORD = Field(path=("$",), text="value")


# --- Tokens ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "str", "name", "op", "eof"
    text: str
    pos: int
    value: Any = None
    sym: str | None = None  # operators and keywords, aliases normalized ("&&" -> "and")


_PATH_RE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|\$)(?:\.[A-Za-z0-9_]+)*")
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>(?:[A-Za-z_][A-Za-z0-9_]*|\$)(?:\.[A-Za-z0-9_]+)*)
    | (?P<op>==|!=|>=|<=|&&|\|\||[<>!+\-*/%()\[\],])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"and", "or", "not", "contains", "startsWith", "endsWith", "in", "true", "false", "null"}
)
_ALIASES = {"&&": "and", "||": "or", "!": "not"}
_HINTS = {"=": "use '==' to compare", "&": "use '&&' or 'and'", "|": "use '||' or 'or'"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", "'": "'", '"': '"'}
_COMPARISONS = frozenset({"==", "!=", ">", ">=", "<", "<=", "contains", "startsWith", "endsWith", "in"})


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        token = _read_string(text, pos) if text[pos] in "'\"" else _read_token(text, pos)
        pos = token.pos + len(token.text)
        if token.kind != "ws":
            tokens.append(token)
    tokens.append(Token("eof", "", len(text)))
    return tokens


def _read_token(text: str, pos: int) -> Token:
    match = _TOKEN_RE.match(text, pos)
    if match is None:
        hint = _HINTS.get(text[pos])
        raise ExpressionError(
            f"unexpected character {text[pos]!r} at position {pos}" + (f"; {hint}" if hint else ""), pos
        )
    kind, raw = match.lastgroup or "", match.group()
    if kind == "num":
        return Token(kind, raw, pos, value=float(raw) if any(c in raw for c in ".eE") else int(raw))
    if kind == "name" and raw in _KEYWORDS:
        return Token("op", raw, pos, sym=raw)
    if kind == "op":
        return Token(kind, raw, pos, sym=_ALIASES.get(raw, raw))
    return Token(kind, raw, pos)


def _read_string(text: str, start: int) -> Token:
    quote, pos = text[start], start + 1
    chars: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return Token("str", text[start : pos + 1], start, value="".join(chars))
        if char == "\\":
            decoded, pos = _read_escape(text, pos)
            chars.append(decoded)
            continue
        chars.append(char)
        pos += 1
    raise ExpressionError(
        f"unterminated string starting at position {start}; expected a closing {quote}", start
    )


def _read_escape(text: str, pos: int) -> tuple[str, int]:
    """Decode the escape at ``text[pos]`` (a backslash); return it and the position after it."""
    code = text[pos + 1 : pos + 2]
    if code in _ESCAPES:
        return _ESCAPES[code], pos + 2
    digits = text[pos + 2 : pos + 6]
    if code == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", digits):
        return chr(int(digits, 16)), pos + 6
    raise ExpressionError(f"invalid escape '\\{code}' at position {pos}", pos)


# --- Parser ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Expr:
    """The AST of ``text``; raises ``ExpressionError`` naming the position and what was expected."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"expression is too long: at most {MAX_EXPRESSION_LENGTH} characters", 0)
    expr = _Parser(text).parse()
    if _depth(expr) > MAX_DEPTH:
        raise ExpressionError(f"expression is too deeply nested (more than {MAX_DEPTH} levels)", 0)
    return expr


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.nesting = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, sym: str) -> bool:
        if self.tok.sym != sym:
            return False
        self.index += 1
        return True

    def expect(self, sym: str, expected: str) -> None:
        if not self.accept(sym):
            raise self.fail(expected)

    def fail(self, expected: str) -> ExpressionError:
        tok = self.tok
        if tok.kind == "eof":
            found = "end of expression"
        else:
            found = tok.text if tok.kind == "str" else repr(tok.text)
        return ExpressionError(f"unexpected {found} at position {tok.pos}; expected {expected}", tok.pos)

    @contextmanager
    def nested(self, opening: Token) -> Iterator[None]:
        if self.nesting >= MAX_NESTING:
            raise ExpressionError(f"too many nested brackets at position {opening.pos}", opening.pos)
        self.nesting += 1
        yield
        self.nesting -= 1

    def parse(self) -> Expr:
        expr = self.or_()
        if self.tok.kind != "eof":
            raise self.fail("an operator or the end of the expression")
        return expr

    def or_(self) -> Expr:
        left = self.and_()
        while self.accept("or"):
            left = Logic("or", left, self.and_())
        return left

    def and_(self) -> Expr:
        left = self.not_()
        while self.accept("and"):
            left = Logic("and", left, self.not_())
        return left

    def not_(self) -> Expr:
        # Iterative so that "not not not ..." cannot exhaust the stack.
        count = 0
        while self.accept("not"):
            count += 1
        expr = self.comparison()
        for _ in range(count):
            expr = Not(expr)
        return expr

    def comparison(self) -> Expr:
        left: Expr
        if self.index == 0 and self.tok.sym in _COMPARISONS:
            left, lenient = RECORD, True  # the original's "> 50": see the module docstring
        else:
            left, lenient = self.additive(), False
            if self.tok.sym not in _COMPARISONS:
                return left
        op = self.advance().sym or ""
        right = self.additive()
        if self.tok.sym in _COMPARISONS:
            raise self.fail("'and' or 'or' (comparisons cannot be chained)")
        return Compare(op, left, right, lenient)

    def additive(self) -> Expr:
        left = self.term()
        while self.tok.sym in ("+", "-"):
            op = self.advance().text
            left = Arith(op, left, self.term())
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.tok.sym in ("*", "/", "%"):
            op = self.advance().text
            left = Arith(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        count = 0
        while self.accept("-"):
            count += 1
        expr = self.primary()
        for _ in range(count):
            expr = Negate(expr)
        return expr

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.advance()
            return Const(tok.value)
        if tok.sym in ("true", "false", "null"):
            self.advance()
            return Const({"true": True, "false": False, "null": None}[tok.sym])
        if tok.sym == "(":
            return self.group()
        if tok.sym == "[":
            return ArrayOf(self.items(self.advance(), "]"))
        if tok.kind == "name":
            return self.name()
        raise self.fail("a value")

    def group(self) -> Expr:
        with self.nested(self.advance()):
            expr = self.or_()
        self.expect(")", "')'")
        return expr

    def items(self, opening: Token, close: str) -> tuple[Expr, ...]:
        """Comma-separated expressions up to ``close``, just after the ``opening`` bracket."""
        found: list[Expr] = []
        with self.nested(opening):
            if self.accept(close):
                return ()
            found.append(self.or_())
            while not self.accept(close):
                self.expect(",", f"',' or '{close}'")
                found.append(self.or_())
        return tuple(found)

    def name(self) -> Expr:
        tok = self.advance()
        if self.tok.sym == "(" and "." not in tok.text:
            return _make_call(tok, self.items(self.advance(), ")"))
        return Field(tuple(tok.text.split(".")), tok.text)


def _make_call(tok: Token, args: tuple[Expr, ...]) -> Call:
    spec = _FUNCTIONS.get(tok.text)
    if spec is None:
        known = ", ".join(sorted(_FUNCTIONS))
        raise ExpressionError(
            f"unknown function {tok.text!r} at position {tok.pos}; known functions: {known}", tok.pos
        )
    low, high, _ = spec
    if len(args) < low or (high is not None and len(args) > high):
        wanted = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
        raise ExpressionError(
            f"{tok.text}() at position {tok.pos} takes {wanted} argument(s), got {len(args)}", tok.pos
        )
    if tok.text == "exists":
        return Call("exists", (_path_argument(tok, args[0]),))
    return Call(tok.text, args)


def _path_argument(tok: Token, arg: Expr) -> Field:
    """``exists`` takes its path as a quoted string, so that naming a missing field is not itself an error."""
    if isinstance(arg, Const) and isinstance(arg.value, str) and _PATH_RE.fullmatch(arg.value):
        return Field(tuple(arg.value.split(".")), arg.value)
    raise ExpressionError(
        f"exists() at position {tok.pos} takes a field path in quotes, e.g. exists('user.name')", tok.pos
    )


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, (Negate, Not)):
        return (expr.operand,)
    if isinstance(expr, (Logic, Arith, Compare)):
        return (expr.left, expr.right)
    if isinstance(expr, ArrayOf):
        return expr.items
    if isinstance(expr, Call):
        return expr.args
    return ()


def _depth(expr: Expr) -> int:
    """Tree depth, measured without recursion (long chains like ``a+a+...+a`` build deep left spines)."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in _children(node))
    return deepest


# --- Values ----------------------------------------------------------------------------------------------


def to_text(value: Any) -> str:
    """A record as a line of text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def describe(value: Any) -> str:
    """``a string "60"``, ``a number 50``, ``null``: for error messages, shortened."""
    return "null" if value is None else f"{_kind(value)} {_short(value)}"


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, booleans are not numbers, arrays and objects element-wise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


_NUMBER_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


def _number_from_text(text: str) -> float | None:
    """The number a string spells, or failing that its first comma-separated field (the original's rule)."""
    for candidate in (text, text.split(",", 1)[0]):
        if _NUMBER_RE.fullmatch(candidate):
            return float(candidate)
    return None


# --- Evaluator -------------------------------------------------------------------------------------------


def evaluate(expr: Expr, record: Any) -> Any:
    """The value of ``expr`` for ``record``; raises ``EvaluationError``."""
    return _EVALUATORS[type(expr)](expr, record)


def is_true(value: Any) -> bool:
    """A filter condition's verdict: it must be a boolean, never a merely truthy value."""
    if isinstance(value, bool):
        return value
    raise EvaluationError(f"the condition gave {describe(value)}, not true or false")


def _eval_const(expr: Const, record: Any) -> Any:
    return expr.value


def _eval_array(expr: ArrayOf, record: Any) -> Any:
    return [evaluate(item, record) for item in expr.items]


def _eval_field(expr: Field, record: Any) -> Any:
    path = expr.path
    if path[0] == "$" or (path[0] == "value" and not (isinstance(record, dict) and "value" in record)):
        path = path[1:]
    current = record
    for segment in path:
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            raise MissingFieldError(f"record {_short(record)} has no field {expr.text!r}")
    return current


def _eval_negate(expr: Negate, record: Any) -> Any:
    value = evaluate(expr.operand, record)
    if not _is_number(value):
        raise EvaluationError(f"cannot negate {describe(value)}")
    return -value


def _eval_not(expr: Not, record: Any) -> Any:
    value = evaluate(expr.operand, record)
    if not isinstance(value, bool):
        raise EvaluationError(f"'not' needs true or false, got {describe(value)}")
    return not value


def _eval_logic(expr: Logic, record: Any) -> Any:
    for side in (expr.left, expr.right):
        value = evaluate(side, record)
        if not isinstance(value, bool):
            raise EvaluationError(f"'{expr.op}' needs true or false on both sides, got {describe(value)}")
        if value == (expr.op == "or"):  # short-circuit: true for or, false for and
            return value
    return value


def _eval_arith(expr: Arith, record: Any) -> Any:
    a, b = evaluate(expr.left, record), evaluate(expr.right, record)
    if expr.op == "+" and isinstance(a, str) and isinstance(b, str):
        return _bounded_text("'+'", len(a) + len(b), lambda: a + b)
    if not (_is_number(a) and _is_number(b)):
        raise EvaluationError(f"cannot apply '{expr.op}' to {describe(a)} and {describe(b)}")
    if expr.op in ("/", "%") and b == 0:
        raise EvaluationError("division by zero")
    try:
        result = _ARITHMETIC[expr.op](a, b)
    except OverflowError:  # an integer too large for a float: 10**400 / 3, 10**400 + 0.5
        result = math.inf
    if isinstance(result, float) and not math.isfinite(result):
        raise EvaluationError(f"'{expr.op}' overflowed on {describe(a)} and {describe(b)}")
    return _bounded_int(f"'{expr.op}'", result)


def _bounded_int(what: str, value: Any) -> Any:
    """``value``, unless it is an integer of more than MAX_INT_DIGITS digits (JSON could not hold it)."""
    if isinstance(value, int) and abs(value) >= _INT_LIMIT:
        raise EvaluationError(f"{what}: the result has more than {MAX_INT_DIGITS} digits")
    return value


def _bounded_text(what: str, length: int, build: Callable[[], str]) -> str:
    """``build()``, unless the text would be longer than MAX_TEXT_LENGTH (checked before it is built)."""
    if length > MAX_TEXT_LENGTH:
        raise EvaluationError(f"{what}: the text would have {length} characters, more than {MAX_TEXT_LENGTH}")
    return build()


def _divide(a: float, b: float) -> float:
    # Whole quotients of integers stay integers, so "6 / 2" is 3 as in JSON-minded languages.
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b
    return a / b


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "%": lambda a, b: a % b,
}


def _eval_compare(expr: Compare, record: Any) -> Any:
    a, b = evaluate(expr.left, record), evaluate(expr.right, record)
    if expr.lenient:
        a = _as_original_saw_it(expr.op, a, b)
    return _COMPARATORS[expr.op](a, b)


def _as_original_saw_it(op: str, a: Any, b: Any) -> Any:
    """The record as the original's string-only conditions compared it (see the module docstring)."""
    if isinstance(a, str) and _is_number(b):
        number = _number_from_text(a)
        return a if number is None else number
    if op in _TEXT_OPS and _is_number(a) and isinstance(b, str):
        return to_text(a)
    return a


_TEXT_OPS = frozenset({"contains", "startsWith", "endsWith"})


def _ordered(op: str) -> Callable[[Any, Any], bool]:
    compare: Callable[[Any, Any], bool] = {
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }[op]

    def check(a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return compare(a, b)
        raise EvaluationError(f"cannot compare {describe(a)} with {describe(b)} using '{op}'")

    return check


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return b in a
    if isinstance(a, list):
        return any(_same(item, b) for item in a)
    raise EvaluationError(
        f"'contains' needs a string (with a string) or an array on the left, got {describe(a)}"
    )


def _affix(op: str) -> Callable[[Any, Any], bool]:
    def check(a: Any, b: Any) -> bool:
        if isinstance(a, str) and isinstance(b, str):
            return a.startswith(b) if op == "startsWith" else a.endswith(b)
        raise EvaluationError(f"'{op}' needs two strings, got {describe(a)} and {describe(b)}")

    return check


def _member(a: Any, b: Any) -> bool:
    if isinstance(b, list):
        return any(_same(a, item) for item in b)
    raise EvaluationError(f"'in' needs an array on the right, got {describe(b)}")


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": _same,
    "!=": lambda a, b: not _same(a, b),
    **{op: _ordered(op) for op in (">", ">=", "<", "<=")},
    "contains": _contains,
    "startsWith": _affix("startsWith"),
    "endsWith": _affix("endsWith"),
    "in": _member,
}


def _eval_call(expr: Call, record: Any) -> Any:
    if expr.name == "exists":
        return _exists(expr.args[0], record)
    if expr.name == "coalesce":
        return _coalesce(expr.args, record)
    impl = _FUNCTIONS[expr.name][2]
    return impl(*(evaluate(arg, record) for arg in expr.args))


def _exists(path: Expr, record: Any) -> bool:
    try:
        evaluate(path, record)
    except MissingFieldError:
        return False
    return True


def _coalesce(args: tuple[Expr, ...], record: Any) -> Any:
    """The first non-null argument; a missing field counts as null, which is the point of coalesce."""
    for arg in args:
        try:
            value = evaluate(arg, record)
        except MissingFieldError:
            if not isinstance(arg, Field):
                raise
            continue
        if value is not None:
            return value
    return None


_EVALUATORS: dict[type, Callable[[Any, Any], Any]] = {
    Const: _eval_const,
    ArrayOf: _eval_array,
    Field: _eval_field,
    Negate: _eval_negate,
    Not: _eval_not,
    Logic: _eval_logic,
    Arith: _eval_arith,
    Compare: _eval_compare,
    Call: _eval_call,
}


# --- Functions -------------------------------------------------------------------------------------------


def _string_function(name: str, method: Callable[[str], str]) -> Callable[[Any], str]:
    def apply(value: Any) -> str:
        if not isinstance(value, str):
            raise EvaluationError(f"{name}() needs a string, got {describe(value)}")
        return method(value)

    return apply


def _length(value: Any) -> int:
    if isinstance(value, (str, list, dict)):
        return len(value)
    raise EvaluationError(f"len() needs a string, an array or an object, got {describe(value)}")


def _to_float(value: Any) -> float:
    if _is_number(value):
        try:
            return float(value)
        except OverflowError:
            raise EvaluationError(f"float(): {describe(value)} is too large for a number") from None
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
        return float(value)
    raise EvaluationError(f"cannot convert {describe(value)} to a number")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        digits = len(value.strip().lstrip("+-"))  # leading zeros count: int() refuses them too
        if digits > MAX_INT_DIGITS:
            raise EvaluationError(f"int(): at most {MAX_INT_DIGITS} digits, got {digits}")
        return int(value)
    number = _to_float(value)
    if not math.isfinite(number):
        raise EvaluationError(f"cannot convert {describe(value)} to an integer")
    return int(number)  # truncates toward zero


def _round(value: Any, digits: Any = 0) -> int | float:
    """Half away from zero (2.5 -> 3), not Python's banker's rounding, as people expect of round()."""
    if not _is_number(value) or not (isinstance(digits, int) and not isinstance(digits, bool)):
        raise EvaluationError(f"round() needs a number and a whole number of digits, got {describe(value)}")
    if not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS:
        raise EvaluationError(
            f"round(): ndigits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}, got {digits}"
        )
    if isinstance(value, int) and digits >= 0:
        return value
    # Precision for every digit of the value and of the rounding: quantize fails rather than round otherwise.
    with localcontext(prec=MAX_INT_DIGITS + 2 * MAX_ROUND_DIGITS + 20):
        rounded = Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return float(rounded) if digits > 0 else _bounded_int("round()", int(rounded))


def _abs(value: Any) -> Any:
    if not _is_number(value):
        raise EvaluationError(f"abs() needs a number, got {describe(value)}")
    return abs(value)


def _concat(*values: Any) -> Any:
    """Arrays join into one array; otherwise every argument is turned into text and joined."""
    if all(isinstance(v, list) for v in values):
        length = sum(len(v) for v in values)
        if length > MAX_ARRAY_LENGTH:
            raise EvaluationError(
                f"concat(): the array would have {length} items, more than {MAX_ARRAY_LENGTH}"
            )
        return [item for v in values for item in v]
    texts = [_text_of("concat()", v) for v in values]
    return _bounded_text("concat()", sum(map(len, texts)), lambda: "".join(texts))


def _text_of(what: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    text = to_text(value)
    if len(text) > MAX_TEXT_LENGTH:
        raise EvaluationError(
            f"{what}: the text would have {len(text)} characters, more than {MAX_TEXT_LENGTH}"
        )
    return text


# name -> (fewest arguments, most arguments or None for any number, implementation)
_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Any]]] = {
    "upper": (1, 1, _string_function("upper", str.upper)),
    "lower": (1, 1, _string_function("lower", str.lower)),
    "trim": (1, 1, _string_function("trim", str.strip)),
    "len": (1, 1, _length),
    "str": (1, 1, lambda value: _text_of("str()", value)),
    "int": (1, 1, _to_int),
    "float": (1, 1, _to_float),
    "round": (1, 2, _round),
    "abs": (1, 1, _abs),
    "concat": (1, None, _concat),
    "coalesce": (1, None, _coalesce),  # evaluated lazily in _eval_call
    "exists": (1, 1, _exists),  # evaluated lazily in _eval_call
}
