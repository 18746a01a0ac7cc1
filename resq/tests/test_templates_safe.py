"""No template holds code or styles the Content-Security-Policy would refuse.

The policy allows scripts and styles from our static files only, so an inline handler,
a `javascript:` URL, an inline `<script>` or a `style` attribute would not run (or not
apply) in the browser: it is a bug, and the first thing an injected payload would try.
Page behaviour lives in static JS; data reaches it through `json_script`.
"""

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR).resolve()

#: Why each kind of markup is refused.
RULES = {
    "inline event handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "htmx inline handler (hx-on)": re.compile(r"\shx-on\b", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript\s*:", re.IGNORECASE),
    "htmx js: expression": re.compile(r"\shx-[\w-]+\s*=\s*[\"']\s*js:", re.IGNORECASE),
    "inline <script>": re.compile(r"<script\b(?![^>]*\ssrc\s*=)[^>]*>", re.IGNORECASE),
    "<style> element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
}

#: Email is read in a mail client, not served under our policy, and mail clients ignore
#: style sheets: its layout has to sit in style attributes. Scripts are still refused.
EMAIL_ALLOWED = {"style attribute"}

COMMENT = re.compile(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.DOTALL)


def template_dirs() -> list[Path]:
    dirs = [Path(d).resolve() for engine in settings.TEMPLATES for d in engine.get("DIRS", [])]
    for config in apps.get_app_configs():
        path = Path(config.path).resolve() / "templates"
        # Our apps only: third-party templates are their maintainers' to fix.
        if path.is_dir() and path.is_relative_to(ROOT) and ".venv" not in path.parts:
            dirs.append(path)
    return dirs


def templates() -> list[Path]:
    return sorted({p for d in template_dirs() for p in d.rglob("*") if p.is_file()})


def problems(text: str, *, allowed: set[str] = frozenset()) -> list[str]:
    text = COMMENT.sub("", text)
    found = []
    for what, pattern in RULES.items():
        if what in allowed:
            continue
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"line {line}: {what}: {match.group().strip()!r}")
    return found


def test_it_finds_the_projects_templates():
    found = {p.relative_to(ROOT).as_posix() for p in templates()}

    assert {"templates/base.html", "templates/queueing/desk.html"} <= found
    assert {"templates/403.html", "templates/404.html", "templates/500.html"} <= found


@pytest.mark.parametrize("path", templates(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_it_has_no_inline_code_or_styles(path):
    allowed = EMAIL_ALLOWED if "email" in path.relative_to(ROOT).parts else set()

    assert problems(path.read_text(), allowed=allowed) == []


@pytest.mark.parametrize(
    "markup",
    [
        '<button onclick="go()">',
        "<a href='javascript:alert(1)'>",
        '<a href="JavaScript :void(0)">',
        '<div hx-on::after-request="x()">',
        "<div hx-vals='js:{a: 1}'>",
        "<script>alert(1)</script>",
        '<script type="module">import "x";</script>',
        "<style>p { color: red }</style>",
        '<p style="color: red">',
        "<img src=x ONERROR=alert(1)>",
    ],
)
def test_it_would_find_inline_code(markup):
    assert problems(f"<div>\n{markup}\n</div>")


@pytest.mark.parametrize(
    "markup",
    [
        "<script src=\"{% static 'js/resq.js' %}\" defer></script>",
        '<button type="submit" class="primary">Start</button>',
        '<div hx-post="/desk/" hx-swap="outerHTML">',
        "{# an onclick= in a comment is not markup #}",
        "<p>Questions? Ask the person on the desk.</p>",
        "<a href=\"{% url 'queueing:desk' %}\">",
    ],
)
def test_it_leaves_ordinary_markup_alone(markup):
    assert problems(markup) == []
