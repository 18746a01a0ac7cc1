"""Response headers: the exact values ResQ sends, on each kind of answer it gives.

docs/security.md ("Header policy") lists each header with its reason. Most headers are
the same with DEBUG on or off, so the pages are asked for here; what only production
sends (the HTTPS redirect, HSTS, cookies marked Secure) is asked of the production
settings, run in a process of their own with DEBUG off.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import reverse

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import pass_two_factor
from queueing.models import Board
from resq.headers import SecurityHeadersMiddleware

HOST = "resq.example.edu"

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Not publickey-credentials-*: security keys sign in on our own pages.
    "Permissions-Policy": (
        "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), "
        "geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), "
        "usb=()"
    ),
    "Cache-Control": "max-age=0, no-cache, no-store, must-revalidate, private",
}
HSTS = "max-age=31536000; includeSubDomains; preload"


def sent(response) -> dict[str, str | None]:
    """The policy's headers as this answer has them, None for one it lacks."""
    return {name: response.get(name) for name in HEADERS}


# --- every kind of answer ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "headers", "status"),
    [
        pytest.param("/", {}, 302, id="redirect"),
        pytest.param("/desk/", {}, 200, id="page"),
        pytest.param("/desk/", {"HX-Request": "true"}, 200, id="htmx answer"),
        pytest.param("/desk/poll/?v={version}", {"HX-Request": "true"}, 204, id="unchanged poll"),
        pytest.param("/reports/export/visits.csv?period=last-week", {}, 200, id="csv download"),
        pytest.param("/admin/queueing/visit/", {}, 200, id="admin"),
        pytest.param("/no-such-page/", {}, 404, id="error page"),
    ],
)
def test_it_sends_the_header_policy_on_every_kind_of_answer(client, url, headers, status):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    pass_two_factor(client, root)

    response = client.get(url.format(version=Board.current_version()), headers=headers)

    assert response.status_code == status
    assert sent(response) == HEADERS


def test_it_keeps_a_views_own_cache_control(rf):
    def cached(request):
        response = HttpResponse("public")
        response["Cache-Control"] = "max-age=60, public"
        return response

    response = SecurityHeadersMiddleware(cached)(rf.get("/"))

    assert response["Cache-Control"] == "max-age=60, public"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"


def test_it_leaves_static_files_their_cache_and_gives_them_the_other_headers():
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=False):
        response = Client().get(f"/{settings.STATIC_URL.strip('/')}/css/resq.css")

    assert response.status_code == 200
    # WhiteNoise answers before the CSP and X-Frame-Options are added: neither means
    # anything for a file that is not a page.
    assert sent(response) == HEADERS | {
        "Cache-Control": "max-age=60, public",
        "Content-Security-Policy": None,
        "X-Frame-Options": None,
    }


@pytest.mark.django_db
def test_it_shares_nothing_with_other_sites(client):
    response = client.options(
        reverse("accounts:login"),
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
    )

    assert "Access-Control-Allow-Origin" not in response


# --- what only production sends ------------------------------------------------------------

PROBE = """
import json, sys
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from accounts.models import User
from django.test import Client

host, password = sys.argv[1:]
User.objects.create_user("leader", password=password)
client = Client(HTTP_HOST=host)

def answer(response):
    return {
        "status": response.status_code,
        "headers": dict(response.items()),
        "cookies": {
            name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"]),
                   "samesite": m["samesite"]}
            for name, m in response.cookies.items()
        },
    }

print(json.dumps({
    "http": answer(client.get("/")),
    "redirect": answer(client.get("/", secure=True)),
    "login page": answer(client.get("/accounts/login/", secure=True)),
    "login": answer(client.post(
        "/accounts/login/", {"username": "leader", "password": password}, secure=True
    )),
}))
"""


def production_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What compose gives the app, with nothing from this machine's .env or shell."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR"}
    environment = {key: value for key, value in os.environ.items() if key in keep}
    return environment | {
        "DJANGO_SETTINGS_MODULE": "resq.settings",
        "DEBUG": "off",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        # The hashed manifest is made when the image is built; rendering does not need it.
        "STATIC_MANIFEST": "off",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> dict[str, dict]:
    tmp_path = tmp_path_factory.mktemp("production")
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE, HOST, secrets.token_urlsafe(16)],
        cwd=settings.BASE_DIR,
        env=production_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_redirects_plain_http_to_https_on_the_same_host(production):
    http = production["http"]

    assert http["status"] == 301
    assert http["headers"]["Location"] == f"https://{HOST}/"


@pytest.mark.parametrize("answer", ["redirect", "login page", "login"])
def test_it_sends_hsts_and_the_header_policy_over_https_in_production(production, answer):
    headers = production[answer]["headers"]

    assert headers["Strict-Transport-Security"] == HSTS
    assert sent(headers) == HEADERS


def test_it_sends_cookies_only_over_https_and_out_of_scripts_reach(production):
    cookies = production["login page"]["cookies"] | production["login"]["cookies"]

    assert production["login"]["status"] == 302
    assert cookies == {
        "csrftoken": {"secure": True, "httponly": True, "samesite": "Lax"},
        "sessionid": {"secure": True, "httponly": True, "samesite": "Lax"},
    }
