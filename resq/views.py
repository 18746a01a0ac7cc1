import sys

from django.contrib.auth.decorators import login_not_required
from django.db import InterfaceError, OperationalError, connection
from django.db.utils import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

# Plain HTML, like the 500 page: templates and context processors would read the
# session and the user, which live in the database that just failed.
DATABASE_UNREACHABLE_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Database unavailable · ResQ</title>
  <link rel="stylesheet" href="/static/css/resq.css">
</head>
<body>
  <header class="site-header"><a class="brand" href="/">ResQ</a></header>
  <main id="main">
    <section class="error-page card" aria-labelledby="error-heading">
      <p class="error-code">Error 503</p>
      <h1 id="error-heading">ResQ can't reach its database</h1>
      <p>Nothing can be saved or shown until it is back. Try again in a minute: an open
        desk screen recovers by itself.</p>
    </section>
  </main>
</body>
</html>
"""


@require_GET
def home(request: HttpRequest) -> HttpResponseRedirect:
    """Where each role starts: the desk, else the reports, else admin, else the
    account page (a coordinator signing in is not sent to a desk they may not use)."""
    user = request.user
    if user.has_perm("queueing.use_desk"):
        return redirect("queueing:desk")
    if user.has_perm("reporting.view_reports"):
        return redirect("reporting:dashboard")
    if user.is_staff:
        return redirect("admin:index")
    return redirect("accounts:overview")


@require_GET
@never_cache
@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and the container HEALTHCHECK: is the database reachable?"""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    # InterfaceError (a connection already closed under us) is no DatabaseError.
    except (DatabaseError, InterfaceError) as exc:
        return JsonResponse(
            {"status": "error", "database": f"unreachable: {exc.__class__.__name__}"},
            status=503,
        )
    return JsonResponse({"status": "ok", "database": "ok"})


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 handler, which also sees a lost database wherever it was lost.

    A database that cannot be reached is usually found out before any view runs: the
    login middleware loads the session and the user from it. So a view cannot catch
    it, and a desk screen would get a bare 500 and claim that the server is gone. Here
    (Django calls this handler while the exception is being handled) a connection
    error becomes a 503 that says what is wrong; the desk shows it as its own banner
    and keeps polling until the database is back. Anything else is the plain 500 page.
    """
    if is_connection_error(sys.exception()):
        return database_unreachable()
    return defaults.server_error(request)


# SQLSTATEs that mean "no usable connection": connection exceptions (class 08), the
# server shutting down, crashed or starting up, and no connection slot left.
CONNECTION_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLite cannot open or read its file; "database is locked" is contention instead.
SQLITE_UNREACHABLE = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB", "SQLITE_CORRUPT")


def is_connection_error(exc: BaseException | None) -> bool:
    """Whether the database could not be reached at all, rather than refusing one
    statement: a deadlock or a cancelled query is an OperationalError too, but the
    next request will work, and the desk must not claim the database is gone."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate.startswith("08") or sqlstate in CONNECTION_SQLSTATES
    errorname = getattr(cause, "sqlite_errorname", None)
    if errorname is not None:
        return errorname.startswith(SQLITE_UNREACHABLE)
    # psycopg reports a refused or dropped connection with no SQLSTATE at all.
    return True


def database_unreachable() -> HttpResponse:
    response = HttpResponse(DATABASE_UNREACHABLE_PAGE, status=503)
    # What the desk's script looks for: the server is up, its database is not.
    response["X-Database"] = "unreachable"
    response["Retry-After"] = "5"
    add_never_cache_headers(response)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent without a valid token (a page left open across a
    new login, cookies blocked) gets the product's page saying what to do, rendered
    with the request so the header knows who is logged in. Django's own page styles
    itself inline, which the CSP refuses. The reason stays out: it names the check."""
    return render(request, "403_csrf.html", status=403)
