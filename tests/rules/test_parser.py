from __future__ import annotations

import pytest

from keepbase.rules import FilterError, parse, parse_sort
from keepbase.rules.ast import Call, Chain, Comparison, Identifier, Number, SortItem, Text
from keepbase.rules.limits import MAX_COMPARISONS, MAX_GROUP_DEPTH, MAX_SORT_ITEMS


def only(chain: Chain) -> Comparison:
    assert len(chain.items) == 1
    item = chain.items[0]
    assert isinstance(item, Comparison)
    return item


def test_simple_comparison() -> None:
    c = only(parse("title = 'abc'"))
    assert c == Comparison(Identifier("title"), "=", Text("abc"))


@pytest.mark.parametrize(
    "op", ["=", "!=", ">", ">=", "<", "<=", "~", "!~", "?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~"]
)
def test_all_operators(op: str) -> None:
    c = only(parse(f"a {op} 1"))
    assert c.op == op
    assert c.any_of == op.startswith("?")


def test_operands() -> None:
    c = only(parse('"x\\"y" = -1.5'))
    assert c.left == Text('x"y')
    assert c.right == Number("-1.5", -1.5)
    c = only(parse("'it\\'s' != 'a\\%b'"))
    assert c.left == Text("it's")
    assert c.right == Text("a\\%b")  # other escapes stay as written


def test_no_whitespace_needed() -> None:
    c = only(parse("a.b:lower>=@now"))
    assert c == Comparison(Identifier("a.b:lower"), ">=", Identifier("@now"))


def test_chain_and_groups() -> None:
    chain = parse("n = 1 || (n = 3 && name = 'x')")
    assert chain.joins == ("||",)
    assert isinstance(chain.items[1], Chain)
    assert chain.items[1].joins == ("&&",)


def test_comments_and_newlines() -> None:
    chain = parse("// leading\nid = 'x' // trailing\n&& a = 1")
    assert len(chain.items) == 2


def test_functions() -> None:
    c = only(parse("geoDistance(loc.lon, loc.lat, 23.32, 42.69) < 10"))
    assert isinstance(c.left, Call)
    assert c.left.name == "geoDistance"
    assert c.left.args[2] == Number("23.32", 23.32)
    c = only(parse("strftime('%Y', d) = '2025'"))
    assert c.left == Call("strftime", (Text("%Y"), Identifier("d")))


def test_huge_number_becomes_zero() -> None:
    c = only(parse("n = " + "9" * 400))
    assert c.right == Number("9" * 400, 0.0)


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("", "empty filter expression"),
        ("   // only a comment", "empty filter expression"),
        ("a = 1 &&", "invalid or incomplete filter expression"),
        ("a =", "invalid or incomplete filter expression"),
        ("a", "invalid or incomplete filter expression"),
        ("(a = 1", "invalid formatted group - missing 1 closing bracket(s)"),
        ("((a = 1", "invalid formatted group - missing 2 closing bracket(s)"),
    ],
)
def test_error_details(source: str, detail: str) -> None:
    with pytest.raises(FilterError) as info:
        parse(source)
    assert info.value.detail == detail
    assert info.value.status == 400
    assert info.value.message == "Something went wrong while processing your request."


@pytest.mark.parametrize(
    "source",
    [
        "a == 1",
        "a = 1 & b = 2",
        "a = 1 ||| b = 2",
        "a = 'unterminated",
        "a = 1)",
        "()",
        "(a = 1) = 2",
        "a = (1)",
        "a.= 1",
        "a: = 1",
        "@ = 1",
        "_ = 1",
        "# = 1",
        "a@b = 1",
        "1.2.3 = 1",
        "a = -",
        "a = 1 / 2",
        "a = f(",
        "a = f(1,)",
        "a = f(,1)",
        "a = f(1 2)",
        "a = f(g(h(i(1))))",
        "a = 1 b = 2",
        "&& a = 1",
        "a = 1 ; DROP TABLE x",
        "a = 1 -- comment",
        "a = 1 /* c */",
        "\x00",
        "a = \x00",
        "naïve = 1",
        "a\r= 1",
    ],
)
def test_invalid(source: str) -> None:
    with pytest.raises(FilterError):
        parse(source)


def test_limits() -> None:
    with pytest.raises(FilterError):
        parse("(" * 10_000 + "a = 1" + ")" * 10_000)
    with pytest.raises(FilterError):
        parse("(" * 1000 + "a = 1" + ")" * 1000)
    deep = "(" * MAX_GROUP_DEPTH + "a = 1" + ")" * MAX_GROUP_DEPTH
    assert parse(deep)
    with pytest.raises(FilterError):
        parse("(" * (MAX_GROUP_DEPTH + 1) + "a = 1" + ")" * (MAX_GROUP_DEPTH + 1))
    ok = " && ".join(["a=1"] * MAX_COMPARISONS)
    assert len(parse(ok).items) == MAX_COMPARISONS
    with pytest.raises(FilterError):
        parse(ok + " && a=1")
    with pytest.raises(FilterError):
        parse("a = '" + "x" * 3500 + "'")
    with pytest.raises(FilterError):
        parse("a = 'é" + "x" * 3494 + "'")  # 3501 bytes, 3500 characters


def test_sort() -> None:
    assert parse_sort("-created, +title,name,,") == [
        SortItem("created", True),
        SortItem("title", False),
        SortItem("name", False),
    ]
    with pytest.raises(FilterError):
        parse_sort(",".join(["a"] * (MAX_SORT_ITEMS + 1)))
    with pytest.raises(FilterError):
        parse_sort("a" * 256)
