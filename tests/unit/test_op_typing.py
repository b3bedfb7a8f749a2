"""Every value a flow receives from a request is typed by the request (``Op[R]``).

A flow asks for a result with ``value = yield from SomeOp(...)``: ``Op.__iter__`` yields the
request and returns the driver's answer typed ``R``, so mypy checks what flows do with it. A
bare ``value = yield SomeOp(...)`` would hand the flow an untyped value; this test finds any
such ``yield`` in the core (a ``yield`` whose value is discarded only tells: ``Emit``,
``AppendAudit``).
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from privata_mongo.core import ops

CORE = Path(ops.__file__).resolve().parent
# The one place an untyped yield meets its typed result: the request itself.
ALLOWED = {("ops.py", "__iter__")}


def _untyped_yields(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found: list[str] = []

    def visit(node: ast.AST, function: str, parent: ast.AST | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        untyped = isinstance(node, ast.Yield) and not isinstance(parent, ast.Expr)
        if untyped and (path.name, function) not in ALLOWED:
            found.append(f"{path.relative_to(CORE)}:{node.lineno} in {function}")
        for child in ast.iter_child_nodes(node):
            visit(child, function, node)

    visit(tree, "<module>", None)
    return found


def test_no_flow_receives_an_untyped_value_from_a_yield() -> None:
    offenders = [hit for path in sorted(CORE.rglob("*.py")) for hit in _untyped_yields(path)]
    assert offenders == []


def test_the_check_finds_an_untyped_yield(tmp_path: Path) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(
        "def flow():\n"
        "    rows = yield FetchAll(None, None)\n"
        "    typed = yield from FetchAll(None, None)\n"
        "    yield Emit(())\n"
    )
    global CORE
    saved, CORE = CORE, tmp_path
    try:
        assert _untyped_yields(flows) == ["flows.py:2 in flow"]
    finally:
        CORE = saved


REQUESTS = [
    c
    for c in vars(ops).values()
    if isinstance(c, type) and issubclass(c, ops.Op) and c is not ops.Op
]


def test_every_member_of_the_request_union_is_a_request_class() -> None:
    assert set(typing.get_args(ops.AnyOp)) == set(REQUESTS)


@pytest.mark.parametrize("op_class", REQUESTS, ids=lambda c: c.__name__)
def test_every_request_declares_its_result_type(op_class: type) -> None:
    (base,) = [b for b in getattr(op_class, "__orig_bases__", ()) if getattr(b, "__origin__", None)]
    assert base.__origin__ is ops.Op
    assert base.__args__, op_class
