"""Load levels with locust on the FastAPI example, wrapped and native: ``python -m stress.load``.

``native_app`` is the example's twin on plain Beanie (its models and schemas are generated
from the example's sources, its patient routes copied), ``wrapped_app`` the example itself with
the optional cache switch, ``locustfile`` the request mix and the levels' shapes, ``run`` the
orchestration (FerretDB, Redis, uvicorn, locust, the audit check) and ``report`` the summary.
"""
