"""``$where``, ``$expr`` and ``$text`` below the top level fail in the planner, as on the server.

MongoDB parses ``$elemMatch``'s object form as a sub-document, where the operators that apply
to the whole document are refused (``BadValue``, code 2: "$expr can only be applied to the
top-level document", ``expression_parser.cpp`` ``parseExpr``/``parseWhere``/``parseText``);
at a field, ``$where`` "cannot be applied to a field" and ``$expr``/``$text`` are unknown
operators. The server says so only after the command, operands included, has left the process
(and entered the driver's command log), and an operand may carry an identity value: the
planner raises the server's error first, whatever the nesting.
"""

from __future__ import annotations

from typing import Any

import pytest

from privata_mongo.core.failures import BAD_VALUE, OperationFailed
from privata_mongo.core.routing import plan_filter
from privata_mongo.core.schema import ModelSchema

EMAIL = "ada@example.org"
EXPR = {"$expr": {"$eq": ["$email", EMAIL]}}
WHERE = {"$where": f"this.email == '{EMAIL}'"}
TEXT = {"$text": {"$search": EMAIL}}
TOP = "can only be applied to the top-level document"
FIELD = "$where cannot be applied to a field"


def _elem(body: Any) -> dict[str, Any]:
    return {"$elemMatch": body}


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"visits": _elem(EXPR)}, f"$expr {TOP}"),
        ({"visits": _elem(WHERE)}, f"$where {TOP}"),
        ({"visits": _elem(TEXT)}, f"$text {TOP}"),
        ({"visits": _elem({"ward": "A", **EXPR})}, f"$expr {TOP}"),
        ({"visits": _elem({"$or": [{"ward": "A"}, EXPR]})}, f"$expr {TOP}"),
        ({"visits": _elem({"$and": [{"$nor": [WHERE]}]})}, f"$where {TOP}"),
        ({"visits": _elem({"notes": _elem(EXPR)})}, f"$expr {TOP}"),
        ({"visits": _elem({"notes": {"$not": _elem({"$or": [EXPR]})}})}, f"$expr {TOP}"),
        ({"$and": [{"visits": _elem(EXPR)}]}, f"$expr {TOP}"),
        ({"$or": [{"first_name": "Ada"}, {"visits": _elem(EXPR)}]}, f"$expr {TOP}"),
        ({"$nor": [{"visits": {"$not": _elem(WHERE)}}]}, f"$where {TOP}"),
        ({"visits": {"$all": [_elem({"ward": "A"}), _elem(EXPR)]}}, f"$expr {TOP}"),
        ({"email": _elem(EXPR)}, f"$expr {TOP}"),  # on an identity field too
        ({"visits": {"$where": WHERE["$where"]}}, FIELD),
        ({"visits": {"$elemMatch": {"$gt": 1, "$where": "1"}}}, FIELD),
        ({"age": {"$expr": EXPR["$expr"]}}, "unknown operator: $expr"),
        ({"age": {"$not": {"$text": TEXT["$text"]}}}, "unknown operator: $text"),
        ({"visits": _elem({"$gt": 1, "$expr": EXPR["$expr"]})}, "unknown operator: $expr"),
    ],
)
def test_a_whole_document_operator_below_the_top_fails_as_on_the_server(
    schema: ModelSchema, filter: dict[str, Any], message: str
) -> None:
    with pytest.raises(OperationFailed) as raised:
        plan_filter(schema, filter)
    assert (raised.value.message, raised.value.code) == (message, BAD_VALUE)


@pytest.mark.parametrize(
    "filter",
    [
        {"visits": _elem({"ward": "A"})},
        {"visits": _elem({"$gt": 1})},
        {"visits": _elem({"$and": [{"ward": "A"}]})},
        {"$or": [{"age": 3}, {"$expr": {"$gt": ["$age", 1]}}]},
        {"$comment": "$expr", "age": {"$not": {"$gt": 3}}},
    ],
)
def test_the_same_operators_where_the_server_takes_them_are_planned(
    schema: ModelSchema, filter: dict[str, Any]
) -> None:
    assert plan_filter(schema, filter).probes == ()
