"""An ASGI wrapper in front of the app: a request body limit and the security headers.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, which wraps ``receive`` so that
``Request.is_disconnected`` in a streaming response reports a disconnect too early.
"""
import json

# no inline script or style, nothing from another origin
HEADERS = [(b"content-security-policy",
            b"default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"),
           (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]


class RequestGuard:
    """Answers 413 to a request whose body (declared or streamed) exceeds ``limit`` bytes and
    adds HEADERS to every response.

    The body is read here (at most ``limit`` bytes) and replayed to the app, so a client that
    streams without a Content-Length is cut off just as one that declares too much.
    """

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    @classmethod
    def wrap(cls, app, cfg):
        """``app`` behind the body limit of ``cfg`` (a ServeConfig) and, if it names any, its
        allowed Host headers."""
        if cfg.allowed_hosts:
            from starlette.middleware.trustedhost import TrustedHostMiddleware
            app = TrustedHostMiddleware(app, allowed_hosts=cfg.allowed_hosts)
        return cls(app, cfg.max_body)

    async def _refuse(self, send, size: str) -> None:
        body = json.dumps({"error": f"request body of {size} bytes is over the limit of {self.limit:,}"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), *HEADERS]})
        await send({"type": "http.response.body", "body": body.encode()})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send, f"{int(declared):,}")
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                return await self._refuse(send, f"more than {self.limit:,}")
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:  # later calls wait for the disconnect, as streaming responses expect
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)
        await self.app(scope, replay, send_with_headers)
