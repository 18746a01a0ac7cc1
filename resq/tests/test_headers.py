"""Response headers: the production settings earn an A+ by Mozilla Observatory's rules.

The Observatory (the `@mdn/mdn-http-observatory` grader) starts every site at 100 and
applies one modifier per test: CSP, cookies, CORS, redirection, Referrer-Policy, HSTS,
subresource integrity, X-Content-Type-Options, X-Frame-Options and
Cross-Origin-Resource-Policy. Bonuses count only if the penalties alone leave 90 or
more. `observatory_score` below re-implements those rules (algorithm version 4) for the
headers ResQ sends, and scores what the production settings answer, run in a process of
their own with DEBUG off, as the Observatory would fetch it: `http://` first, which must
redirect to `https://`, then the page `/` leads to. Removing any header must lower the
score, so the test fails as soon as a header goes missing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import pass_two_factor
from queueing.tests.factories import VisitFactory
from resq.headers import PERMISSIONS_POLICY

ROOT = Path(settings.BASE_DIR)
HOST = "resq.example.edu"
SIX_MONTHS = 60 * 60 * 24 * 182

# --- what the production settings answer -----------------------------------------------

PROBE = """
import json, sys
import django
django.setup()
from django.core.management import call_command
# Rate limits count in the database cache, whose table migrate makes; the rest of the
# schema is not needed to answer these pages.
call_command("createcachetable")
from django.test import Client

HOST = sys.argv[1]

def answer(response, url):
    return {
        "url": url,
        "status": response.status_code,
        "headers": [[k.lower(), v] for k, v in response.items()]
        + [["set-cookie", c.output(header="").strip()] for c in response.cookies.values()],
        "body": response.content.decode() if not response.streaming else "",
    }

def follow(url):
    client = Client(HTTP_HOST=HOST)
    chain = []
    for _ in range(10):
        secure = url.startswith("https://")
        path = url.split(HOST, 1)[1] or "/"
        response = client.get(path, secure=secure)
        chain.append(answer(response, url))
        if response.status_code not in (301, 302, 303, 307, 308):
            break
        location = response["Location"]
        scheme = "https://" if secure else "http://"
        url = location if "://" in location else scheme + HOST + location
    return chain

chains = {"http": follow(f"http://{HOST}/"), "https": follow(f"https://{HOST}/")}
final = chains["https"][-1]["url"]
client = Client(HTTP_HOST=HOST)
path = final.split(HOST, 1)[1]
chains["cors"] = answer(
    client.options(path, secure=True, headers={
        "Origin": "https://http-observatory.security.mozilla.org",
        "Access-Control-Request-Method": "GET",
    }),
    final,
)
chains["robots"] = answer(client.get("/robots.txt", secure=True), f"https://{HOST}/robots.txt")
print(json.dumps(chains))
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
def production(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("production")
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", PROBE, HOST],
        cwd=ROOT,
        env=production_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- the Observatory's rules -------------------------------------------------------------


@dataclass
class Response:
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: str = ""

    @classmethod
    def from_json(cls, data: dict) -> Response:
        return cls(data["url"], data["status"], [tuple(h) for h in data["headers"]], data["body"])

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    def first(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def without(self, name: str) -> Response:
        return Response(
            self.url, self.status, [h for h in self.headers if h[0] != name.lower()], self.body
        )

    def replacing(self, name: str, value: str) -> Response:
        return Response(
            self.url,
            self.status,
            [h for h in self.headers if h[0] != name.lower()] + [(name.lower(), value)],
            self.body,
        )


@dataclass
class Scan:
    """What the Observatory fetches: the http:// chain, the https:// chain (whose last
    answer it grades), a CORS preflight of that page, and /robots.txt for more cookies."""

    http: list[Response]
    https: list[Response]
    cors: Response
    robots: Response

    @classmethod
    def from_json(cls, data: dict) -> Scan:
        return cls(
            [Response.from_json(r) for r in data["http"]],
            [Response.from_json(r) for r in data["https"]],
            Response.from_json(data["cors"]),
            Response.from_json(data["robots"]),
        )

    @property
    def page(self) -> Response:
        return self.https[-1]

    def with_page(self, page: Response) -> Scan:
        return Scan(self.http, [*self.https[:-1], page], self.cors, self.robots)


@dataclass
class Result:
    test: str
    expectation: str
    modifier: int


@dataclass
class Score:
    results: list[Result] = field(default_factory=list)

    @property
    def uncurved(self) -> int:
        return 100 + sum(r.modifier for r in self.results if r.modifier < 0)

    @property
    def score(self) -> int:
        # Extra credit only for a site that earns an A without it.
        if self.uncurved >= 90:
            return max(100 + sum(r.modifier for r in self.results), 0)
        return max(self.uncurved, 0)

    @property
    def grade(self) -> str:
        return grade_for(self.score)

    def modifier(self, test: str) -> int:
        return next(r.modifier for r in self.results if r.test == test)

    def __str__(self) -> str:
        lines = [f"{r.test}: {r.expectation} ({r.modifier:+d})" for r in self.results]
        return "\n".join([*lines, f"score {self.score}, grade {self.grade}"])


GRADES = [
    (100, "A+"),
    (90, "A"),
    (85, "A-"),
    (80, "B+"),
    (70, "B"),
    (65, "B-"),
    (60, "C+"),
    (50, "C"),
    (45, "C-"),
    (40, "D+"),
    (30, "D"),
    (25, "D-"),
    (0, "F"),
]


def grade_for(score: int) -> str:
    rounded = min(score - score % 5, 100)
    return next(grade for floor, grade in GRADES if rounded >= floor)


DANGEROUSLY_BROAD = {
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
}
UNSAFE_INLINE = {"'unsafe-inline'", "data:"}
NONCES_HASHES = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")


class InvalidPolicy(ValueError):
    pass


def parse_csp(headers: list[str]) -> dict[str, set[str]]:
    """One policy's directives (the first policy's, where several are sent)."""
    if not headers:
        return {}
    policy: dict[str, set[str]] = {}
    for index, header in enumerate(headers):
        seen = set()
        header = header.replace("\r", "").replace("\n", "").strip()
        if len(header) < len("img-src") - 1:
            raise InvalidPolicy(header)
        for entry in header.split(";"):
            parts = entry.strip().split()
            if not parts:
                continue
            directive, sources = parts[0].lower(), {s.lower() for s in parts[1:]}
            if directive in seen and directive not in ("report-uri", "report-to"):
                raise InvalidPolicy(f"duplicate {directive}")
            seen.add(directive)
            if not sources and directive.endswith("-src"):
                sources = {"'none'"}
            if index == 0 or directive not in policy:
                policy[directive] = sources
    return policy


def csp_test(scan: Scan) -> tuple[Result, dict[str, set[str]] | None]:
    page = scan.page
    name = "content-security-policy"
    try:
        csp = parse_csp(page.all("content-security-policy"))
    except InvalidPolicy:
        return Result(name, "csp-header-invalid", -25), None
    if not csp:
        return Result(name, "csp-not-implemented", -25), None
    script = set(csp.get("script-src") or csp.get("default-src") or {"*"})
    style = set(csp.get("style-src") or csp.get("default-src") or {"*"})
    objects = csp.get("object-src") or csp.get("default-src") or {"*"}
    for sources in (script, style):
        if any(s.startswith(NONCES_HASHES) for s in sources):
            sources.discard("'unsafe-inline'")
    if "'strict-dynamic'" in script:
        if not any(s.startswith(NONCES_HASHES) for s in script):
            return Result(name, "csp-header-invalid", -25), csp
        script = {
            s
            for s in script
            if s not in ("'self'", "'unsafe-inline'")
            and not any(s.startswith(b) for b in DANGEROUSLY_BROAD)
        }
    active = [
        s for d, v in csp.items() if d not in ("img-src", "media-src", "script-src") for s in v
    ]
    active += list(script)
    passive = [
        s for d in ("img-src", "media-src") for s in (csp.get(d) or csp.get("default-src") or ())
    ]
    if script & (DANGEROUSLY_BROAD | UNSAFE_INLINE) or objects & DANGEROUSLY_BROAD:
        result = Result(name, "csp-implemented-with-unsafe-inline", -20)
    elif any(s.startswith(("http:", "ftp:")) for s in active):
        result = Result(name, "csp-implemented-with-insecure-scheme", -20)
    elif "'unsafe-eval'" in script | style:
        result = Result(name, "csp-implemented-with-unsafe-eval", -10)
    elif any(s.startswith(("http:", "ftp:")) for s in passive):
        result = Result(name, "csp-implemented-with-insecure-scheme-in-passive-content-only", -10)
    elif style & (DANGEROUSLY_BROAD | UNSAFE_INLINE):
        result = Result(name, "csp-implemented-with-unsafe-inline-in-style-src-only", 0)
    elif csp.get("default-src") == {"'none'"}:
        result = Result(name, "csp-implemented-with-no-unsafe-default-src-none", 10)
    else:
        result = Result(name, "csp-implemented-with-no-unsafe", 5)
    return result, csp


def parse_cookie(header: str) -> dict:
    name_value, *attributes = (part.strip() for part in header.split(";"))
    cookie = {"name": name_value.split("=", 1)[0], "secure": False, "httponly": False}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        key = key.strip().lower()
        if key in ("secure", "httponly"):
            cookie[key] = True
        elif key == "samesite":
            cookie["samesite"] = value.strip()
    return cookie


COOKIE_BADNESS = [
    ("cookies-without-secure-flag-but-protected-by-hsts", -5),
    ("cookies-without-secure-flag", -20),
    ("cookies-session-without-secure-flag-but-protected-by-hsts", -10),
    ("cookies-samesite-flag-invalid", -20),
    ("cookies-anticsrf-without-samesite-flag", -20),
    ("cookies-session-without-httponly-flag", -30),
    ("cookies-session-without-secure-flag", -40),
]


def cookies_test(scan: Scan) -> Result:
    name = "cookies"
    headers = [h for r in [*scan.https, scan.robots] for h in r.all("set-cookie")]
    if not headers:
        return Result(name, "cookies-not-found", 0)
    hsts = hsts_test(scan).modifier >= 0
    worst = -1
    missing_samesite = False

    def worse(expectation: str) -> None:
        nonlocal worst
        index = [e for e, _ in COOKIE_BADNESS].index(expectation)
        worst = max(worst, index)

    for header in headers:
        cookie = parse_cookie(header)
        samesite = cookie.get("samesite")
        if samesite is not None and samesite.lower() not in ("lax", "strict", "none"):
            worse("cookies-samesite-flag-invalid")
        session = any(part in cookie["name"].lower() for part in ("login", "sess"))
        anticsrf = "csrf" in cookie["name"].lower()
        if not cookie["secure"] and (samesite or "").lower() == "none":
            worse("cookies-samesite-flag-invalid")
        if not cookie["secure"]:
            worse(
                "cookies-without-secure-flag-but-protected-by-hsts"
                if hsts
                else "cookies-without-secure-flag"
            )
        if anticsrf and not samesite:
            worse("cookies-anticsrf-without-samesite-flag")
        if session and not cookie["secure"]:
            worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts"
                if hsts
                else "cookies-session-without-secure-flag"
            )
        if session and not cookie["httponly"]:
            worse("cookies-session-without-httponly-flag")
        missing_samesite = missing_samesite or not samesite
    if worst >= 0:
        return Result(name, *COOKIE_BADNESS[worst])
    if missing_samesite:
        return Result(name, "cookies-secure-with-httponly-sessions", 0)
    return Result(name, "cookies-secure-with-httponly-sessions-and-samesite", 5)


def cors_test(scan: Scan) -> Result:
    name = "cross-origin-resource-sharing"
    allowed = scan.cors.first("access-control-allow-origin")
    if allowed is None:
        return Result(name, "cross-origin-resource-sharing-not-implemented", 0)
    credentials = (scan.cors.first("access-control-allow-credentials") or "").strip().lower()
    if allowed.strip() != "*" and credentials == "true":
        return Result(name, "cross-origin-resource-sharing-implemented-with-universal-access", -50)
    return Result(name, "cross-origin-resource-sharing-implemented-with-restricted-access", 0)


def redirection_test(scan: Scan) -> Result:
    name = "redirection"
    route = [urlsplit(r.url) for r in scan.http]
    if len(route) == 1:
        return Result(name, "redirection-missing", -20)
    if route[-1].scheme != "https":
        return Result(name, "redirection-not-to-https", -20)
    if route[1].scheme == "http":
        return Result(name, "redirection-not-to-https-on-initial-redirection", -10)
    if route[0].hostname != route[1].hostname:
        return Result(name, "redirection-off-host-from-http", -5)
    return Result(name, "redirection-to-https", 0)


def referrer_policy_test(scan: Scan) -> Result:
    name = "referrer-policy"
    good = ["no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"]
    bad = ["origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade"]
    headers = scan.page.all("referrer-policy")
    if not headers:
        return Result(name, "referrer-policy-not-implemented", 0)
    values = [v.strip().lower() for v in ", ".join(headers).split(",")]
    valid = [v for v in values if v in good + bad]
    policy = valid[-1] if valid else ""
    if policy in good:
        return Result(name, "referrer-policy-private", 5)
    if policy in bad:
        return Result(name, "referrer-policy-unsafe", -5)
    return Result(name, "referrer-policy-header-invalid", -5)


def hsts_test(scan: Scan) -> Result:
    # A host on the browsers' preload list earns +5; a new deployment is not on it yet.
    name = "strict-transport-security"
    header = scan.page.first("strict-transport-security")
    if header is None:
        return Result(name, "hsts-not-implemented", -20)
    if "," in header:
        return Result(name, "hsts-header-invalid", -20)
    max_age = None
    for parameter in (p.strip().lower() for p in header.split(";")):
        if parameter.startswith("max-age="):
            digits = re.match(r"\d+", parameter[8:])
            max_age = int(digits.group()) if digits else None
    if max_age is None:
        return Result(name, "hsts-header-invalid", -20)
    if max_age < SIX_MONTHS:
        return Result(name, "hsts-implemented-max-age-less-than-six-months", -10)
    return Result(name, "hsts-implemented-max-age-at-least-six-months", 0)


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))


def sri_test(scan: Scan) -> Result:
    name = "subresource-integrity"
    page = scan.page
    if (page.first("content-type") or "").split(";")[0] not in (
        "text/html",
        "application/xhtml+xml",
    ):
        return Result(name, "sri-not-implemented-response-not-html", 0)
    parser = _Scripts()
    parser.feed(page.body)
    if not parser.scripts:
        return Result(name, "sri-not-implemented-but-no-scripts-loaded", 0)
    for script in parser.scripts:
        src = script.get("src")
        foreign = src and (src.startswith("//") or urlsplit(src).netloc not in ("", HOST))
        if foreign and not script.get("integrity"):
            return Result(name, "sri-not-implemented-but-external-scripts-loaded-securely", -5)
    return Result(name, "sri-not-implemented-but-all-scripts-loaded-from-secure-origin", 0)


def x_content_type_options_test(scan: Scan) -> Result:
    name = "x-content-type-options"
    header = scan.page.first("x-content-type-options")
    if header is None:
        return Result(name, "x-content-type-options-not-implemented", -5)
    if header.strip().lower() != "nosniff":
        return Result(name, "x-content-type-options-header-invalid", -5)
    return Result(name, "x-content-type-options-nosniff", 0)


def x_frame_options_test(scan: Scan, csp: dict[str, set[str]] | None) -> Result:
    name = "x-frame-options"
    if csp and "frame-ancestors" in csp:
        return Result(name, "x-frame-options-implemented-via-csp", 5)
    header = (scan.page.first("x-frame-options") or "").strip().lower()
    if header in ("deny", "sameorigin") or header.startswith("allow-from"):
        return Result(name, "x-frame-options-sameorigin-or-deny", 0)
    if not header:
        return Result(name, "x-frame-options-not-implemented", -20)
    return Result(name, "x-frame-options-header-invalid", -20)


def corp_test(scan: Scan) -> Result:
    name = "cross-origin-resource-policy"
    header = (scan.page.first("cross-origin-resource-policy") or "").strip().lower()
    if not header:
        return Result(name, "cross-origin-resource-policy-not-implemented", 0)
    if header in ("same-origin", "same-site"):
        return Result(name, f"cross-origin-resource-policy-implemented-with-{header}", 10)
    if header == "cross-origin":
        return Result(name, "cross-origin-resource-policy-implemented-with-cross-origin", 0)
    return Result(name, "cross-origin-resource-policy-header-invalid", -5)


def observatory_score(scan: Scan) -> Score:
    csp, policy = csp_test(scan)
    return Score(
        [
            csp,
            cookies_test(scan),
            cors_test(scan),
            redirection_test(scan),
            referrer_policy_test(scan),
            hsts_test(scan),
            sri_test(scan),
            x_content_type_options_test(scan),
            x_frame_options_test(scan, policy),
            corp_test(scan),
        ]
    )


# --- the grade ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scan(production) -> Scan:
    return Scan.from_json(production)


def test_it_earns_an_a_plus_with_every_test_passed(scan):
    score = observatory_score(scan)
    print(score)

    assert score.grade == "A+", str(score)
    assert score.score >= 100, str(score)
    # Not one penalty: an A+ earned by bonuses over a failed test is not the goal.
    assert [r for r in score.results if r.modifier < 0] == [], str(score)


def test_it_grades_what_the_observatory_grades(scan):
    # The http:// request redirects to https:// on the same host first; the graded
    # answer is the login page the root leads a stranger to.
    assert scan.http[0].status == 301
    assert scan.http[1].url.startswith(f"https://{HOST}/")
    assert scan.page.status == 200
    assert urlsplit(scan.page.url).path == reverse("accounts:login")
    assert scan.robots.status == 404


@pytest.mark.parametrize(
    ("header", "worse_than_a_plus"),
    [
        ("content-security-policy", True),
        ("strict-transport-security", True),
        ("x-content-type-options", False),
        ("referrer-policy", False),
        ("cross-origin-resource-policy", False),
    ],
)
def test_it_scores_lower_without_each_header(scan, header, worse_than_a_plus):
    full = observatory_score(scan)

    without = observatory_score(scan.with_page(scan.page.without(header)))

    assert without.score < full.score, str(without)
    assert (without.grade != "A+") == worse_than_a_plus, str(without)


@pytest.mark.parametrize(
    ("policy", "expectation"),
    [
        (
            "default-src 'self'; script-src 'self' 'unsafe-inline'",
            "csp-implemented-with-unsafe-inline",
        ),
        ("default-src 'self'; script-src 'self' 'unsafe-eval'", "csp-implemented-with-unsafe-eval"),
        (
            "default-src 'none'; style-src 'unsafe-inline'",
            "csp-implemented-with-unsafe-inline-in-style-src-only",
        ),
        ("default-src 'self'", "csp-implemented-with-no-unsafe"),
        (
            "default-src 'none'; script-src 'self'",
            "csp-implemented-with-no-unsafe-default-src-none",
        ),
        ("script-src 'self'", "csp-implemented-with-unsafe-inline"),  # objects from anywhere
        ("default-src 'self'; default-src 'none'", "csp-header-invalid"),
    ],
)
def test_it_scores_a_weaker_policy_as_the_observatory_does(scan, policy, expectation):
    page = scan.page.replacing("content-security-policy", policy)

    result, _ = csp_test(scan.with_page(page))

    assert result.expectation == expectation


def test_it_loses_the_a_plus_for_a_session_cookie_scripts_can_read(scan):
    page = scan.page.replacing("set-cookie", "sessionid=abc; Path=/; Secure; SameSite=Lax")

    score = observatory_score(scan.with_page(page))

    assert score.modifier("cookies") == -30
    assert score.grade != "A+"


# --- the policy itself ---------------------------------------------------------------------


def directives(scan: Scan) -> dict[str, set[str]]:
    return parse_csp(scan.page.all("content-security-policy"))


def test_it_sends_a_strict_content_security_policy(scan):
    csp = directives(scan)

    assert csp["default-src"] == {"'none'"}
    assert csp["script-src"] == {"'self'"}
    assert csp["style-src"] == {"'self'"}
    assert csp["object-src"] == {"'none'"}
    assert csp["base-uri"] == {"'self'"}
    assert csp["form-action"] == {"'self'"}
    assert csp["frame-ancestors"] == {"'none'"}
    every_source = {source for sources in csp.values() for source in sources}
    assert not every_source & {"'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"}


def test_it_sends_hsts_for_a_year_with_subdomains_and_preload(scan):
    hsts = scan.page.first("strict-transport-security")

    assert hsts == "max-age=31536000; includeSubDomains; preload"


def test_it_sends_the_other_headers(scan):
    page = scan.page

    assert page.first("x-content-type-options") == "nosniff"
    assert page.first("x-frame-options") == "DENY"
    assert page.first("referrer-policy") == "same-origin"
    assert page.first("cross-origin-opener-policy") == "same-origin"
    assert page.first("cross-origin-resource-policy") == "same-origin"
    assert page.first("permissions-policy") == PERMISSIONS_POLICY
    assert "no-store" in page.first("cache-control")


def test_it_sends_cookies_only_over_https_and_the_session_out_of_scripts_reach(scan):
    cookies = [parse_cookie(h) for r in scan.https for h in r.all("set-cookie")]

    assert cookies, "the login page sets the CSRF cookie"
    for cookie in cookies:
        assert cookie["secure"], cookie
        assert cookie.get("samesite") == "Lax", cookie
        if "sess" in cookie["name"]:
            assert cookie["httponly"], cookie


def test_permissions_policy_turns_off_what_resq_never_uses():
    features = dict(item.split("=") for item in PERMISSIONS_POLICY.split(", "))

    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert features[feature] == "()"
    # Security keys (WebAuthn) must keep working on our own pages.
    assert not any(name.startswith("publickey-credentials") for name in features)


# --- every response, not only the login page ------------------------------------------------

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
    "Permissions-Policy",
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/", 302),
        ("/desk/", 200),
        ("/desk/poll/?v=-1", 200),
        ("/desk/visits/{pk}/edit/", 200),
        ("/reports/", 200),
        ("/reports/charts/popular-units.csv", 200),
        ("/reports/week/", 200),
        ("/reports/export/", 200),
        ("/reports/export/visits.csv?period=last-week", 200),
        ("/admin/", 200),
        ("/admin/queueing/visit/", 200),
        ("/admin/queueing/visit/{pk}/change/", 200),
        ("/admin/admin/logentry/", 200),
        ("/accounts/", 200),
        ("/no-such-page/", 404),
    ],
)
def test_it_sends_the_headers_and_no_store_on_every_page_with_student_data(client, url, status):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    visit = VisitFactory()
    client.force_login(root)
    pass_two_factor(client, root)

    response = client.get(url.format(pk=visit.pk))

    assert response.status_code == status
    for header in SECURITY_HEADERS:
        assert header in response, header
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_it_keeps_a_views_own_cache_control(rf):
    from django.http import HttpResponse

    from resq.headers import SecurityHeadersMiddleware

    def cached(request):
        response = HttpResponse("public")
        response["Cache-Control"] = "max-age=60, public"
        return response

    response = SecurityHeadersMiddleware(cached)(rf.get("/"))

    assert response["Cache-Control"] == "max-age=60, public"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"


@pytest.mark.django_db
def test_it_leaves_static_files_their_cache_and_gives_them_the_cross_origin_header(settings):
    css = Path(settings.BASE_DIR) / "static" / "css" / "resq.css"
    assert css.exists()
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=False):
        response = Client().get("/" + settings.STATIC_URL.strip("/") + "/css/resq.css")

    assert response.status_code == 200
    assert "no-store" not in response["Cache-Control"]
    assert "max-age" in response["Cache-Control"]
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
