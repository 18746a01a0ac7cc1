"""Response headers Django has no setting for, and no caching of anything but static files.

Django's own settings (settings.py) send the Content-Security-Policy, HSTS,
X-Content-Type-Options, X-Frame-Options, Referrer-Policy and Cross-Origin-Opener-Policy;
docs/security.md ("Header policy") lists every header with its value and reason.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

#: Browser features no ResQ page uses, switched off for the page and anything it embeds:
#: a script that got in anyway cannot ask for the camera, the microphone or a location.
#: Only names Chromium recognises (it reports an unknown one as a console error), and not
#: publickey-credentials-*: security keys sign in with WebAuthn on our own pages.
DISABLED_FEATURES = (
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "geolocation",
    "gyroscope",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "usb",
)
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in DISABLED_FEATURES)


class SecurityHeadersMiddleware:
    """Cross-Origin-Resource-Policy and Permissions-Policy on every response, and
    `Cache-Control: no-store` on every response that does not set its own caching.

    Almost every page shows student data (the desk, its dialogs and polls, reports,
    exports, admin), and nothing else ResQ renders is worth caching: so rather than
    remembering never_cache on each new view, a response without Cache-Control is never
    stored by the browser or a proxy. Static files keep their long cache, since
    WhiteNoise sets theirs. This sits above WhiteNoise in MIDDLEWARE so that static files
    get the cross-origin header too, and never reads the user or the session, so a health
    check or a static file costs no query.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # Our pages, scripts and files are for our own pages only: no other site may
        # embed them (a student list in someone else's <img> or <script> tag).
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if "Cache-Control" not in response.headers:
            add_never_cache_headers(response)
        return response
