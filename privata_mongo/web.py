"""Access contexts for web applications: a FastAPI dependency and a WSGI middleware.

Both take a *resolver*: a function from the request to the ``AccessContext`` of the person or
service behind it (``None``: no context, which strict mode refuses). Derive the actor from the
authenticated identity, never from a header the client may set freely; ``from_headers`` is for
services behind a gateway that sets those headers itself.

FastAPI::

    from privata_mongo.web import fastapi_access
    access = fastapi_access(lambda request: AccessContext(actor=request.state.user, ...))
    app = FastAPI(dependencies=[Depends(access)])

Flask (or any WSGI application)::

    from privata_mongo.web import AccessContextMiddleware
    app.wsgi_app = AccessContextMiddleware(app.wsgi_app, resolve)

FastAPI and Starlette are imported only when ``fastapi_access`` is called.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

from privata_mongo.context import AccessContext, access_context, use_access

__all__ = ["AccessContextMiddleware", "fastapi_access", "from_headers"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def from_headers(
    headers: Mapping[str, str],
    actor: str = "x-actor",
    purpose: str = "x-purpose",
    legal_basis: str = "x-legal-basis",
    request_id: str = "x-request-id",
) -> AccessContext | None:
    """An access context from request headers set by a trusted gateway (``None`` if no actor)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if not lowered.get(actor):
        return None
    return AccessContext(
        lowered.get(actor),
        lowered.get(purpose),
        lowered.get(legal_basis),
        lowered.get(request_id),
    )


def fastapi_access(resolve: Callable[[Any], Any]) -> Callable[..., AsyncIterator[Any]]:
    """A FastAPI dependency that runs the request under the context ``resolve(request)`` gives.

    ``resolve`` may be a coroutine function. The dependency yields the context, so an
    endpoint can also declare it as a parameter.
    """
    from starlette.requests import Request

    async def dependency(request: Request) -> AsyncIterator[AccessContext | None]:
        context = resolve(request)
        if inspect.isawaitable(context):
            context = await context
        if context is None:
            yield None
            return
        with access_context(
            context.actor, context.purpose, context.legal_basis, context.request_id
        ):
            yield context

    dependency.__annotations__["request"] = Request
    return dependency


class AccessContextMiddleware:
    """WSGI middleware: each request runs in its own ``contextvars`` context holding its access.

    The application and the iteration of its response both run in that context, so streamed
    responses are audited under the same actor; nothing leaks into the server's thread.

    Args:
        app: the WSGI application (Flask: ``app.wsgi_app``).
        resolve: ``environ → AccessContext | None``.
    """

    def __init__(
        self, app: WSGIApp, resolve: Callable[[dict[str, Any]], AccessContext | None]
    ) -> None:
        self._app = app
        self._resolve = resolve

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Serve one request under the access context ``resolve`` gives for it."""
        context = contextvars.copy_context()
        context.run(use_access, self._resolve(environ))
        result = context.run(self._app, environ, start_response)
        return _InContext(result, context)


class _InContext:
    """A WSGI response iterated (and closed) inside the request's context."""

    def __init__(self, result: Iterable[bytes], context: contextvars.Context) -> None:
        self._result = result
        self._context = context

    def __iter__(self) -> Iterator[bytes]:
        iterator = self._context.run(iter, self._result)
        while True:
            try:
                chunk = self._context.run(next, iterator)
            except StopIteration:
                return
            yield chunk

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            self._context.run(close)
