from __future__ import annotations

from typing import Any

import pytest

from apps.workflows.engine.expressions import (
    MAX_NESTING,
    EvaluationError,
    ExpressionError,
    MissingFieldError,
    evaluate,
    is_true,
    parse,
    to_text,
)

PERSON = {
    "name": "Ada Lovelace",
    "age": 36,
    "city": "London",
    "tags": ["math", "poetry"],
    "user": {"name": "ada", "email": "ada@example.org", "active": True, "score": None},
    "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 5}],
}


def value_of(text: str, record: Any = None) -> Any:
    return evaluate(parse(text), record)


def parse_error(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    return caught.value


def evaluation_error(text: str, record: Any) -> str:
    with pytest.raises(EvaluationError) as caught:
        value_of(text, record)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("4.5", 4.5),
        ("1e3", 1000.0),
        ("'single'", "single"),
        ('"double"', "double"),
        (r"'it\'s'", "it's"),
        (r'"tab\there"', "tab\there"),
        (r"'\u00e9'", "é"),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 'a', null, [true]]", [1, "a", None, [True]]),
        ("[]", []),
    ],
)
def test_it_reads_literals(text: str, expected: Any) -> None:
    assert value_of(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("-2 * 3", -6),
        ("- -2", 2),
        ("2 - -2", 4),
        ("7 / 2", 3.5),
        ("6 / 2", 3),
        ("7 % 3", 1),
        ("1.5 + 1", 2.5),
        ("'ab' + 'cd'", "abcd"),
        ("age * 2 + 1", 73),
    ],
)
def test_it_computes_arithmetic_with_the_usual_precedence(text: str, expected: Any) -> None:
    result = value_of(text, PERSON)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age > 30", True),
        ("age >= 36", True),
        ("age < 36", False),
        ("age <= 36", True),
        ("age == 36", True),
        ("age != 36", False),
        ("name == 'Ada Lovelace'", True),
        ("city < 'Paris'", True),
        ("age > 30 and city == 'London'", True),
        ("age > 40 or city == 'London'", True),
        ("age > 40 or city == 'Paris'", False),
        ("not age > 40", True),
        ("not (age > 30 and city == 'Paris')", True),
        ("age > 30 && !(city == 'Paris') || false", True),
        ("name contains 'Love'", True),
        ("name contains 'love'", False),
        ("tags contains 'poetry'", True),
        ("tags contains 'music'", False),
        ("name startsWith 'Ada'", True),
        ("user.email endsWith '.org'", True),
        ("city in ['Paris', 'London']", True),
        ("age in [1, 2, 3]", False),
        ("user.name == 'ada' and user.active", True),
        ("items.1.qty > items.0.qty", True),
        ("user.score == null", True),
        ("len(tags) == 2", True),
    ],
)
def test_it_evaluates_conditions_on_object_records(text: str, expected: bool) -> None:
    assert is_true(value_of(text, PERSON)) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 == 1.0", True),
        ("true == 1", False),
        ("0 == false", False),
        ("null == null", True),
        ("null == 0", False),
        ("'1' == 1", False),
        ("[1, 'a'] == [1, 'a']", True),
        ("[1, 'a'] == ['a', 1]", False),
        ("[[1]] contains [1]", True),
    ],
)
def test_it_compares_json_values_by_type_and_value(text: str, expected: bool) -> None:
    assert value_of(text) is expected


@pytest.mark.parametrize(
    ("record", "text", "expected"),
    [
        (42, "value", 42),
        (42, "$", 42),
        (42, "value * 2", 84),
        ("abc", "upper(value)", "ABC"),
        ({"value": 7, "other": 1}, "value", 7),
        ({"value": 7, "other": 1}, "$", {"value": 7, "other": 1}),
        ({"other": 1}, "value", {"other": 1}),
        ({"other": 1}, "value.other", 1),
        ({"other": 1}, "$.other", 1),
        ([10, 20, 30], "value.1", 20),
    ],
)
def test_it_refers_to_the_record_itself_as_value_or_dollar(record: Any, text: str, expected: Any) -> None:
    assert value_of(text, record) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("upper(city)", "LONDON"),
        ("lower('AbC')", "abc"),
        ("trim('  x  ')", "x"),
        ("len(name)", 12),
        ("len(user)", 4),
        ("str(age)", "36"),
        ("str(tags)", '["math","poetry"]'),
        ("str(null)", "null"),
        ("int('42')", 42),
        ("int(4.9)", 4),
        ("int(-4.9)", -4),
        ("int('4.5')", 4),
        ("float('4.5')", 4.5),
        ("float(2)", 2.0),
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("round(2.345, 2)", 2.35),
        ("round(1234, -2)", 1200),
        ("abs(-3)", 3),
        ("concat(name, ' (', age, ')')", "Ada Lovelace (36)"),
        ("concat([1], [2, 3])", [1, 2, 3]),
        ("coalesce(user.nickname, user.name)", "ada"),
        ("coalesce(user.score, 0)", 0),
        ("coalesce(null, missing)", None),
        ("exists('user.email')", True),
        ("exists('user.phone')", False),
        ("exists('items.1.sku')", True),
        ("exists('items.5')", False),
    ],
)
def test_it_calls_the_builtin_functions(text: str, expected: Any) -> None:
    result = value_of(text, PERSON)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("condition", "record", "expected"),
    [
        ("> 50", "60", True),
        ("> 50", "40", False),
        ("> 50", 60, True),
        ("> 50", 50.5, True),
        ("< 10", "9.5", True),
        (">= 3", "3", True),
        ("<= 3", " 4 ", False),
        ("> 10", "12,foo,bar", True),
        ("> 10", "8,foo,bar", False),
        ("== 12", "12,foo", True),
        ("contains 'abc'", "xxabcxx", True),
        ("contains 'abc'", "xxabxx", False),
        ("startsWith 'ab'", "abc", True),
        ("contains '5'", 152, True),
        ("endsWith '.5'", 2.5, True),
        ("in [1, 2]", 2, True),
    ],
)
def test_it_applies_conditions_that_start_with_an_operator_to_the_record_as_the_original_did(
    condition: str, record: Any, expected: bool
) -> None:
    assert is_true(value_of(condition, record)) is expected


def test_it_reads_a_leading_operator_only_at_the_very_start() -> None:
    assert value_of("> 50 and value != '99'", "60") is True
    assert "expected a value" in str(parse_error("value > 50 and < 100"))


@pytest.mark.parametrize(
    ("condition", "record"),
    [
        ("value > 50", "60"),  # written out, a numeric string is a string
        ("> 50", "sixty"),
        ("> 50", "a,60"),
        ("> 50", {"age": 60}),
        ("> 'a'", 5),
    ],
)
def test_it_refuses_to_order_values_of_different_types(condition: str, record: Any) -> None:
    assert "cannot compare" in evaluation_error(condition, record)


@pytest.mark.parametrize(
    ("text", "record", "message"),
    [
        ("age > 30", {"name": "x"}, 'record {"name":"x"} has no field \'age\''),
        ("age > 30", 42, "record 42 has no field 'age'"),
        ("user.name", {"user": "ada"}, "has no field 'user.name'"),
        ("items.2", {"items": [1, 2]}, "has no field 'items.2'"),
        ("1 / 0", None, "division by zero"),
        ("5 % 0", None, "division by zero"),
        ("age - 'x'", {"age": 1}, "cannot apply '-' to a number 1 and a string \"x\""),
        ("'a' + 1", None, "cannot apply '+'"),
        ("-'a'", None, "cannot negate a string"),
        ("1 and true", None, "'and' needs true or false"),
        ("false or 'yes'", None, "'or' needs true or false"),
        ("not 1", None, "'not' needs true or false"),
        ("upper(1)", None, "upper() needs a string, got a number 1"),
        ("int('abc')", None, 'cannot convert a string "abc" to a number'),
        ("len(5)", None, "len() needs a string"),
        ("1 in 'abc'", None, "'in' needs an array"),
        ("5 contains 1", None, "'contains' needs"),
        ("value contains '5'", 152, "'contains' needs"),  # only the leading-operator form reads it as text
        ("'abc' startsWith 1", None, "'startsWith' needs two strings"),
    ],
)
def test_it_reports_what_went_wrong_when_a_record_cannot_be_evaluated(
    text: str, record: Any, message: str
) -> None:
    assert message in evaluation_error(text, record)


def test_it_signals_a_missing_field_with_its_own_error_class() -> None:
    with pytest.raises(MissingFieldError):
        value_of("nope", {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("false and missing > 1", False),
        ("true or missing > 1", True),
    ],
)
def test_it_short_circuits_and_and_or(text: str, expected: bool) -> None:
    assert value_of(text, {}) is expected


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("age > )", 6, "unexpected ')' at position 6; expected a value"),
        ("(age > 3", 8, "unexpected end of expression at position 8; expected ')'"),
        ("age >", 5, "unexpected end of expression at position 5; expected a value"),
        ("", 0, "unexpected end of expression at position 0; expected a value"),
        ("age > 3 4", 8, "unexpected '4' at position 8; expected an operator or the end of the expression"),
        ("age = 3", 4, "unexpected character '=' at position 4; use '==' to compare"),
        ("a & b", 2, "use '&&' or 'and'"),
        ("a < b < c", 6, "comparisons cannot be chained"),
        ("'abc", 0, "unterminated string starting at position 0"),
        (r"'a\qb'", 2, "invalid escape '\\q' at position 2"),
        ("[1, 2", 5, "expected ',' or ']'"),
        ("f(1) == 1", 0, "unknown function 'f' at position 0"),
        ("x == __import__('os')", 5, "unknown function '__import__' at position 5"),
        ("upper()", 0, "upper() at position 0 takes 1 argument(s), got 0"),
        ("round(1, 2, 3)", 0, "takes 1 to 2 argument(s), got 3"),
        ("exists(age)", 0, "exists() at position 0 takes a field path in quotes"),
        ("age > 3 and", 11, "expected a value"),
        ("@", 0, "unexpected character '@' at position 0"),
    ],
)
def test_it_names_the_position_and_what_was_expected_when_an_expression_does_not_parse(
    text: str, position: int, message: str
) -> None:
    error = parse_error(text)
    assert message in str(error)
    assert error.position == position


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1),
        "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1),
        " + ".join(["1"] * 5000),
        "not " * 5000 + "true",
        "-" * 5000 + "1",
    ],
)
def test_it_rejects_expressions_nested_deeper_than_the_evaluator_can_go_without_exhausting_the_stack(
    text: str,
) -> None:
    assert "nested" in str(parse_error(text))


def test_it_evaluates_long_chains_just_within_the_depth_limit() -> None:
    assert value_of(" or ".join(["value == 2"] * 190 + ["value == 1"]), 1) is True


def test_it_caches_parsed_expressions() -> None:
    assert parse("age > 30 and city == 'London'") is parse("age > 30 and city == 'London'")


@pytest.mark.parametrize("value", [1, "yes", None, [True]])
def test_it_accepts_only_booleans_as_a_condition_verdict(value: Any) -> None:
    with pytest.raises(EvaluationError, match="not true or false"):
        is_true(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("plain", "plain"), (42, "42"), (None, "null"), ({"b": 1, "a": "é"}, '{"b":1,"a":"é"}')],
)
def test_it_renders_strings_as_they_are_and_other_values_as_compact_json(value: Any, expected: str) -> None:
    assert to_text(value) == expected
