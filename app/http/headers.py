"""Security headers on every response, set by the `secure` package's ASGI middleware, and
`Cache-Control: no-store` on everything but static files.

The pages need no inline script or style (the JavaScript is /static/app.js, the API docs'
start-up script /static/docs/init.js), so the Content-Security-Policy allows only our own
origin. no-store keeps pages with secrets (a new API token, activation links) and everyone's
scores out of browser and proxy caches, and the back button after logout.
"""

from __future__ import annotations

from secure import (
    ContentSecurityPolicy,
    CrossOriginOpenerPolicy,
    ReferrerPolicy,
    Secure,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)
from secure.middleware import SecureASGIMiddleware

from app.settings import Settings

CSP = (ContentSecurityPolicy()
       .default_src("'self'")
       .script_src("'self'")
       .style_src("'self'")
       .img_src("'self'", "data:")       # Swagger UI draws its icons as data: SVGs
       .object_src("'none'")
       .base_uri("'none'")
       .form_action("'self'")
       .frame_ancestors("'none'"))


def secure_headers(settings: Settings) -> Secure:
    return Secure(csp=CSP, xfo=XFrameOptions().deny(), xcto=XContentTypeOptions().nosniff(),
                  referrer=ReferrerPolicy().strict_origin_when_cross_origin(),
                  coop=CrossOriginOpenerPolicy().same_origin(),
                  # HSTS only means something (and is only safe to send) behind HTTPS
                  hsts=StrictTransportSecurity().max_age(31536000) if settings.cookie_secure else None)


class NoStore:
    """Cache-Control: no-store on every response except /static/ files (unless a route set its own)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            return await self.app(scope, receive, send)

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


def install(app, settings: Settings) -> None:
    app.add_middleware(NoStore)
    app.add_middleware(SecureASGIMiddleware, secure=secure_headers(settings))
