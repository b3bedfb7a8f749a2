"""Rewriting an application's imports to the facades: every form, formatting kept, idempotent."""

from __future__ import annotations

import textwrap

import pytest

from privata_mongo.codemod import rewrite_source


def _rewrite(source: str) -> str:
    return rewrite_source(textwrap.dedent(source)).source


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("import mongoengine\n", "import privata_mongo.mongoengine as mongoengine\n"),
        ("import mongoengine as me\n", "import privata_mongo.mongoengine as me\n"),
        ("import mongoengine.fields\n", "import privata_mongo.mongoengine as mongoengine\n"),
        (
            "from mongoengine import Document, StringField\n",
            "from privata_mongo.mongoengine import Document, StringField\n",
        ),
        (
            "from mongoengine.queryset.visitor import Q\n",
            "from privata_mongo.mongoengine.queryset.visitor import Q\n",
        ),
        ("from beanie import Document\n", "from privata_mongo.beanie import Document\n"),
        (
            "from beanie.odm.fields import Link\n",
            "from privata_mongo.beanie.odm.fields import Link\n",
        ),
        ("import beanie, os\n", "import privata_mongo.beanie as beanie, os\n"),
        (
            "import mongoengine, mongoengine.fields\n",
            "import privata_mongo.mongoengine as mongoengine\n",
        ),
    ],
)
def test_every_form_of_import_is_rewritten(before: str, after: str) -> None:
    assert _rewrite(before) == after


def test_other_code_comments_and_formatting_stay_and_a_second_run_changes_nothing() -> None:
    source = textwrap.dedent(
        """\
        # the clinic's models
        from mongoengine import (  # ODM
            Document,
            StringField,   # kept aligned
        )
        import mongoenginex
        from . import mongoengine
        from .mongoengine import helper

        mongoengine_name = "mongoengine"  # a string is not an import
        """
    )
    once = rewrite_source(source)
    assert once.source == source.replace(
        "from mongoengine import (", "from privata_mongo.mongoengine import ("
    )
    assert (once.lines_changed, once.lines_scanned) == (1, 10)
    twice = rewrite_source(once.source)
    assert twice.source == once.source
    assert not twice.changed


def test_only_the_chosen_facades_are_rewritten() -> None:
    source = "import beanie\nimport mongoengine\n"
    assert rewrite_source(source, facades=["beanie"]).source == (
        "import privata_mongo.beanie as beanie\nimport mongoengine\n"
    )


def test_rewritten_module_imports_resolve_to_the_facades() -> None:
    namespace: dict[str, object] = {}
    code = _rewrite(
        """\
        import mongoengine.fields
        from mongoengine.connection import connect
        from mongoengine.queryset.visitor import Q
        """
    )
    exec(compile(code, "<rewritten>", "exec"), namespace)  # noqa: S102 - our own fixed source
    import mongoengine.fields as native_fields
    import mongoengine.queryset.visitor as native_visitor

    import privata_mongo.mongoengine as facade

    assert namespace["mongoengine"] is facade
    assert facade.fields is native_fields
    assert namespace["connect"] is facade.connect
    assert namespace["Q"] is native_visitor.Q
