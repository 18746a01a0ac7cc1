"""Production packaging: the Dockerfile, compose.yaml, gunicorn, the proxy, the scheduler.

No container engine runs in CI (nor `docker compose`), so nothing here builds the image
or starts compose. Instead compose.yaml is validated against the Compose Specification's
JSON schema (deploy/compose-spec.json, from the compose-spec/compose-spec repository,
schema/compose-spec.json at commit 170098ba, Apache-2.0) and its values ResQ relies on
are read from the YAML; and each piece the containers run is run here on its own:
gunicorn with deploy/gunicorn.conf.py against SQLite, the image's HEALTHCHECK against
it, the settings as compose's environment sets them, collectstatic as the image build
runs it, the crontab's commands, and the Caddyfile with `caddy validate` where Caddy is
installed.
"""

import http.client
import json
import os
import re
import runpy
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
CRONTAB = ROOT / "deploy" / "scheduler" / "crontab"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
APP_SERVICES = ("web", "migrate", "scheduler")
DOMAIN = "resq.example.edu"
STUDENT_NUMBER = "21234567"


# --- helpers: compose's variables, the .env file, the Dockerfile -------------------------

#: `${VAR}`, `${VAR:-default}` or `${VAR:?message}`, innermost first: a default holding
#: another variable matches once that one is filled in. `$${VAR}` is the container's.
VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)(?::-([^${}]*)|:\?[^}]*)?\}")


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (.env.example quotes no value)."""
    return dict(re.findall(r"^([A-Za-z_]\w*)=(.*)$", path.read_text(), re.MULTILINE))


def container_environment(service: dict, dotenv: dict[str, str]) -> dict[str, str]:
    """The environment a container of this service gets, given compose's .env: a bare
    `KEY:` passes .env's value through (or leaves KEY unset), `${VAR:-default}` falls
    back when VAR is empty or unset."""
    environment = {}
    for key, value in service.get("environment", {}).items():
        if value is None:
            if key in dotenv:
                environment[key] = dotenv[key]
            continue
        value = str(value)
        while match := VARIABLE.search(value):
            filled = dotenv.get(match[1]) or match[2] or ""
            value = value[: match.start()] + filled + value[match.end() :]
        environment[key] = value
    return environment


def dockerfile() -> list[tuple[str, str, str]]:
    """(stage, instruction, arguments) for each instruction, continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions, stage = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stage = arguments.split()[-1] if " AS " in arguments.upper() else arguments
        instructions.append((stage, instruction, arguments.strip()))
    return instructions


def stage_instructions(stage: str) -> list[tuple[str, str]]:
    return [(ins, args) for name, ins, args in dockerfile() if name == stage]


def healthcheck_command() -> list[str]:
    [arguments] = [args for ins, args in stage_instructions("runtime") if ins == "HEALTHCHECK"]
    return json.loads(arguments.split(" CMD ", 1)[1])


def clean_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A container-like environment: nothing inherited from the test run (CI sets
    DATABASE_URL for the PostgreSQL pass) but PATH."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"} | extra


@pytest.fixture(scope="module")
def compose() -> dict:
    # PyYAML and jsonschema (dev dependencies) are imported where used, so that the
    # tests of the other pieces run even where they are missing.
    import yaml

    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


# --- compose.yaml against the specification ---------------------------------------------


def compose_schema_errors(document: dict) -> list[str]:
    from jsonschema import Draft7Validator

    schema = json.loads((ROOT / "deploy" / "compose-spec.json").read_text())
    Draft7Validator.check_schema(schema)
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_it_is_a_valid_compose_file(compose: dict):
    assert compose_schema_errors(compose) == []


def test_it_would_catch_a_compose_file_the_specification_rejects(compose: dict):
    broken = json.loads(json.dumps(compose))
    broken["services"]["web"]["depends_on"]["migrate"]["condition"] = "completed"
    broken["services"]["db"]["ports"] = "5432:5432"
    errors = compose_schema_errors(broken)
    assert any(error.startswith("services/web/depends_on") for error in errors)
    assert any(error.startswith("services/db/ports") for error in errors)


# --- compose.yaml: the properties that matter ---------------------------------------------


def test_it_runs_each_service_and_checks_the_health_of_those_others_wait_for(services):
    assert set(services) == {"proxy", "web", "migrate", "db", "scheduler", "redis"}
    assert services["db"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert services["db"]["healthcheck"]["test"][1].startswith("pg_isready ")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # web runs the image's own command and health check (the Dockerfile's tests below).
    assert "command" not in services["web"]
    assert "healthcheck" not in services["web"]


def test_it_keeps_the_database_off_every_network_but_an_internal_one(compose, services):
    db = services["db"]
    assert "ports" not in db
    assert "expose" not in db
    assert db["networks"] == ["backend"]
    assert compose["networks"]["backend"]["internal"] is True


def test_it_takes_the_database_password_from_a_required_variable(services):
    db = services["db"]["environment"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", db["POSTGRES_PASSWORD"])
    assert db["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert "trust" not in json.dumps(services["db"])


def test_it_never_defaults_a_secret(compose):
    text = COMPOSE_FILE.read_text()
    for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "RESQ_DOMAIN"):
        uses = re.findall(r"\$\{" + secret + r"(?=[^A-Za-z0-9_])([^}]*)\}", text)
        assert uses, secret
        # Required (`:?`) where compose reads it first, and never given a fallback.
        assert all(not use.startswith(("-", ":-")) for use in uses), secret
        assert any(use.startswith(":?") for use in uses), secret
    for name in APP_SERVICES:
        secret_key = compose["services"][name]["environment"]["SECRET_KEY"]
        assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", secret_key), name


def test_it_migrates_once_in_its_own_container_before_web_starts(services):
    migrate, web = services["migrate"], services["web"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"] == {"condition": "service_healthy"}
    assert web["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert web["depends_on"]["db"] == {"condition": "service_healthy"}
    # The same image as web, so the migrations are the code's own.
    assert migrate["image"] == web["image"]
    assert migrate["build"] == web["build"]
    for name in ("web", "scheduler"):
        assert "migrate" not in json.dumps(services[name].get("command", ""))
        assert "entrypoint" not in services[name]


def test_only_the_proxy_publishes_ports(services):
    for name, service in services.items():
        if name != "proxy":
            assert "ports" not in service, name
    published = {str(port).split(":")[0] for port in services["proxy"]["ports"]}
    assert published == {"80", "443"}
    assert "443:443" in services["proxy"]["ports"]


def test_web_can_run_as_several_containers_behind_the_proxy(services):
    web = services["web"]
    assert "container_name" not in web
    assert web["deploy"]["replicas"] == "${WEB_REPLICAS:-1}"


def test_the_proxy_serves_the_domain_from_the_caddyfile(services):
    proxy = services["proxy"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert re.fullmatch(r"\$\{RESQ_DOMAIN:\?[^}]+\}", proxy["environment"]["RESQ_DOMAIN"])
    assert any(volume.endswith(":/data") for volume in proxy["volumes"])
    assert proxy["image"].startswith("caddy:2")


def test_redis_runs_only_with_the_scale_profile_and_is_not_published(services):
    redis = services["redis"]
    assert redis["profiles"] == ["scale"]
    assert "ports" not in redis
    assert redis["networks"] == ["backend"]
    for name, service in services.items():
        if name != "redis":
            assert "profiles" not in service, f"{name} must start without a profile"


def test_the_scheduler_runs_on_the_services_clock(services):
    scheduler = services["scheduler"]
    assert scheduler["environment"]["TZ"] == "${TIME_ZONE:-Australia/Perth}"
    # The same expression as the app's TIME_ZONE: jobs and app share one clock.
    assert scheduler["environment"]["TIME_ZONE"] == scheduler["environment"]["TZ"]
    assert scheduler["build"]["target"] == "scheduler"
    assert scheduler.get("restart") == "unless-stopped"


def test_every_app_container_gets_the_same_configuration(services):
    web = services["web"]["environment"]
    assert services["migrate"]["environment"] == web
    assert {k: v for k, v in services["scheduler"]["environment"].items() if k != "TZ"} == web
    assert web["DEBUG"] == "off"


def test_every_service_rotates_its_logs(services):
    for name, service in services.items():
        assert service["logging"]["options"]["max-size"], name
        assert service["logging"]["options"]["max-file"], name


def test_every_variable_compose_reads_is_in_env_example(compose):
    read = set(re.findall(r"(?<!\$)\$\{(\w+)", json.dumps(compose)))
    for service in compose["services"].values():
        read |= {key for key, value in service.get("environment", {}).items() if value is None}
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "RESQ_DOMAIN", "TIME_ZONE"} <= read
    assert sorted(read - set(env_file(ENV_EXAMPLE))) == []


def settings_environment_variables() -> set[str]:
    source = (ROOT / "resq" / "settings.py").read_text()
    return set(re.findall(r"\benv(?:\.\w+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", source))


def test_every_setting_read_from_the_environment_is_documented_and_reaches_the_app(services):
    read = settings_environment_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "TIME_ZONE"} <= read
    assert sorted(read - set(env_file(ENV_EXAMPLE))) == []
    # STATIC_MANIFEST matters when the image is built; at run time it follows DEBUG.
    passed = set(services["web"]["environment"]) | {"STATIC_MANIFEST"}
    assert sorted(read - passed) == []


# --- the settings the containers run with ------------------------------------------------

SETTINGS_PROBE = """
import json
import os
import runpy
import sys

scenarios = json.load(sys.stdin)
inherited = dict(os.environ)


def use(environment):
    os.environ.clear()
    os.environ.update(inherited | environment)


results = {}
for name, environment in scenarios.items():
    use(environment)
    module = runpy.run_path("resq/settings.py")
    # Every setting, as text (a timedelta, a path, a CSP keyword).
    results[name] = json.loads(json.dumps(
        {key: value for key, value in module.items() if key.isupper()}, default=str
    ))

# Django's deployment checks, under the first scenario.
use(next(iter(scenarios.values())) | {"DJANGO_SETTINGS_MODULE": "resq.settings"})
import django
from django.core.management import call_command

django.setup()
# No database here (compose's host "db" does not resolve): databases=[] leaves out the
# checks that ask one, such as whether it supports the visit's generated columns and
# which zone they were built in; the container's `migrate` runs those against it.
call_command("check", deploy=True, fail_level="WARNING", databases=[])
print(json.dumps(results))
"""


def test_compose_gives_the_app_a_production_configuration(services, tmp_path: Path):
    """What compose would hand the web container, from .env.example filled in and from
    nothing but the three required values, passes `check --deploy`, and compose's
    fallbacks are the settings' own production defaults (compose left out). One process
    reads the settings module under each environment in turn."""
    required = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(32),
        "RESQ_DOMAIN": DOMAIN,
    }
    web = services["web"]
    scenarios = {
        "from .env.example": container_environment(web, env_file(ENV_EXAMPLE) | required),
        "required only": container_environment(web, required),
        "no compose": {
            "DEBUG": "off",
            "SECRET_KEY": required["SECRET_KEY"],
            "ALLOWED_HOSTS": DOMAIN,
            "DATABASE_URL": f"postgres://resq:{required['POSTGRES_PASSWORD']}@db:5432/resq",
        },
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", SETTINGS_PROBE],
        input=json.dumps(scenarios),
        cwd=ROOT,
        env=clean_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout.splitlines()[-1])
    # What compose sets that the app alone would not: the site's own address.
    site = {"CSRF_TRUSTED_ORIGINS": [f"https://{DOMAIN}"], "RESQ_SITE_URL": f"https://{DOMAIN}"}
    production = {key: value for key, value in results["no compose"].items() if key not in site}
    for name in ("from .env.example", "required only"):
        assert {key: results[name].pop(key) for key in site} == site, name
        differences = {
            key: (results[name].get(key), value)
            for key, value in production.items()
            if results[name].get(key) != value
        }
        assert differences == {}, name
    assert production["DEBUG"] is False
    assert production["ALLOWED_HOSTS"] == [DOMAIN]
    assert production["SECURE_SSL_REDIRECT"] is True
    database = production["DATABASES"]["default"]
    assert (database["ENGINE"], database["HOST"]) == ("django.db.backends.postgresql", "db")
    assert "CompressedManifest" in production["STORAGES"]["staticfiles"]["BACKEND"]


# --- the Dockerfile --------------------------------------------------------------------------


def test_the_image_is_built_in_stages_from_the_lock_file():
    stages = [args for _, ins, args in dockerfile() if ins == "FROM"]
    assert [stage.split()[-1] for stage in stages] == ["builder", "runtime", "scheduler"]
    [python_image] = [args for _, ins, args in dockerfile() if ins == "ARG" and "PYTHON_" in args]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.13-slim-\w+", python_image)
    builder = stage_instructions("builder")
    assert any(
        ins == "COPY" and re.search(r"--from=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+ ", args)
        for ins, args in builder
    ), "uv comes from an image pinned to one release"
    assert any(ins == "RUN" and "uv sync --frozen --no-dev" in args for ins, args in builder)


def test_the_runtime_image_holds_only_the_virtualenv_and_the_app():
    runtime = stage_instructions("runtime")
    copies = [args for ins, args in runtime if ins in ("COPY", "ADD")]
    assert copies == ["--from=builder /opt/venv /opt/venv", "--from=builder /app /app"]


def test_the_image_runs_as_an_unprivileged_user():
    for stage in ("runtime", "scheduler"):
        users = [args for ins, args in stage_instructions(stage) if ins == "USER"]
        assert users, stage
        assert users[-1] not in ("root", "0"), stage


def test_static_files_are_collected_when_the_image_is_built_without_a_real_secret():
    builder = stage_instructions("builder")
    [collect] = [args for ins, args in builder if ins == "RUN" and "collectstatic" in args]
    assert "SECRET_KEY=build-only-not-secret" in collect
    # The throwaway key lives in that one step, never in the image's environment.
    assert not any(ins in ("ENV", "ARG") and "SECRET_KEY" in args for _, ins, args in dockerfile())


def test_settings_load_and_collect_static_files_with_the_build_steps_environment(
    tmp_path: Path,
):
    """The builder's collectstatic step, run here as a dry run: the settings must import
    with DEBUG off, a throwaway key, no database and no .env, and find every file."""
    [collect] = [
        args
        for ins, args in stage_instructions("builder")
        if ins == "RUN" and "collectstatic" in args
    ]
    words = shlex.split(collect)
    build_env = dict(word.split("=", 1) for word in words if re.match(r"[A-Z_]+=", word))
    command = [word for word in words if not re.match(r"[A-Z_]+=", word)]
    assert command[:4] == ["/opt/venv/bin/python", "manage.py", "collectstatic", "--noinput"]
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, *command[1:], "--dry-run"],
        cwd=ROOT,
        env=clean_environment(tmp_path, **build_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "package_data/plotly.min.js'" in result.stdout
    assert "static/js/resq.js'" in result.stdout


def test_the_image_never_migrates_on_start_and_serves_with_gunicorns_config():
    for stage in ("runtime", "scheduler"):
        for ins, args in stage_instructions(stage):
            if ins in ("CMD", "ENTRYPOINT"):
                assert "migrate" not in args, stage
    [command] = [args for ins, args in stage_instructions("runtime") if ins == "CMD"]
    assert json.loads(command) == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]


def test_the_image_checks_its_health_at_healthz_without_curl():
    [healthcheck] = [args for ins, args in stage_instructions("runtime") if ins == "HEALTHCHECK"]
    assert "--interval=" in healthcheck
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/healthz" in command[2]
    assert "curl" not in healthcheck
    assert ("HEALTHCHECK", "NONE") in stage_instructions("scheduler")


def test_the_scheduler_image_checks_its_crontab_when_built():
    scheduler = stage_instructions("scheduler")
    assert any(
        ins == "RUN" and "supercronic -test /app/deploy/scheduler/crontab" in args
        for ins, args in scheduler
    )
    [command] = [args for ins, args in scheduler if ins == "CMD"]
    assert json.loads(command) == ["supercronic", "/app/deploy/scheduler/crontab"]


def dockerignored(path: str) -> bool:
    """Whether a .dockerignore pattern matches `path` or a directory above it, as
    Docker's do; every pattern this project uses is a plain glob."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(pattern.startswith("!") for pattern in patterns), "extend dockerignored()"
    parts = PurePosixPath(path).parts
    directories = [PurePosixPath(*parts[:i]) for i in range(1, len(parts) + 1)]
    return any(directory.full_match(p) for p in patterns for directory in directories)


@pytest.mark.parametrize(
    "path",
    [
        "manage.py",
        "pyproject.toml",
        "uv.lock",
        ".python-version",
        "resq/settings.py",
        "queueing/models.py",
        "reporting/management/commands/send_daily_report.py",
        "templates/base.html",
        "static/js/resq.js",
        "deploy/gunicorn.conf.py",
        "deploy/scheduler/crontab",
        "deploy/backup/backup.sh",
        "deploy/backup/retention.py",
    ],
)
def test_the_build_context_holds_what_the_image_needs(path: str):
    assert not dockerignored(path)


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        ".git/config",
        ".venv/bin/python",
        "db.sqlite3",
        "db.sqlite3-wal",
        "staticfiles/css/resq.css",
        "queueing/tests/test_desk.py",
        "resq/__pycache__/settings.cpython-313.pyc",
    ],
)
def test_the_build_context_leaves_out_secrets_and_local_state(path: str):
    assert dockerignored(path)


# --- gunicorn -------------------------------------------------------------------------------

GUNICORN_VARIABLES = (
    "GUNICORN_WORKERS",
    "GUNICORN_THREADS",
    "GUNICORN_TIMEOUT",
    "GUNICORN_GRACEFUL_TIMEOUT",
    "GUNICORN_MAX_REQUESTS",
    "GUNICORN_ACCESS_LOG",
)


def gunicorn_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    for name in GUNICORN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


def test_gunicorn_defaults_suit_the_service(monkeypatch):
    config = gunicorn_config(monkeypatch)
    assert config["wsgi_app"] == "resq.wsgi:application"
    assert config["bind"] == ["0.0.0.0:8000"]
    assert config["workers"] == 3
    assert config["threads"] == 1
    assert config["timeout"] == 60
    assert config["graceful_timeout"] == 30
    assert config["max_requests"] == 1000
    assert config["max_requests_jitter"] == 100
    assert config["accesslog"] is None


def test_gunicorn_reads_its_settings_from_the_environment(monkeypatch):
    config = gunicorn_config(
        monkeypatch,
        GUNICORN_WORKERS="5",
        GUNICORN_THREADS="4",
        GUNICORN_TIMEOUT="120",
        GUNICORN_GRACEFUL_TIMEOUT="10",
        GUNICORN_MAX_REQUESTS="0",
        GUNICORN_ACCESS_LOG="on",
    )
    assert (config["workers"], config["threads"]) == (5, 4)
    assert (config["timeout"], config["graceful_timeout"]) == (120, 10)
    assert (config["max_requests"], config["max_requests_jitter"]) == (0, 0)
    assert config["accesslog"] == "-"
    # The access log never carries a query string or a referrer.
    assert "%(U)s" in config["access_log_format"]
    for atom in ("%(r)s", "%(q)s", "%(f)s"):
        assert atom not in config["access_log_format"]


def test_gunicorn_reads_an_empty_value_as_its_default(monkeypatch):
    config = gunicorn_config(monkeypatch, GUNICORN_WORKERS="", GUNICORN_TIMEOUT=" ")
    assert (config["workers"], config["timeout"]) == (3, 60)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GUNICORN_WORKERS", "0", "GUNICORN_WORKERS must be at least 1"),
        ("GUNICORN_THREADS", "many", "GUNICORN_THREADS must be a whole number"),
        ("GUNICORN_MAX_REQUESTS", "-1", "GUNICORN_MAX_REQUESTS must be at least 0"),
    ],
)
def test_gunicorn_refuses_a_nonsense_setting(monkeypatch, name, value, message):
    with pytest.raises(ValueError, match=message):
        gunicorn_config(monkeypatch, **{name: value})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn as the image runs it (its config file, production settings), on SQLite
    and a free port, its output collected in a file."""

    def __init__(self, tmp_path: Path, name: str, database_url: str):
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        self.home = tmp_path / name
        self.home.mkdir()
        self.environment = clean_environment(
            self.home,
            DEBUG="off",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS=DOMAIN,
            DATABASE_URL=database_url,
            GUNICORN_WORKERS="1",
            GUNICORN_ACCESS_LOG="on",
            # The app's own request line for /healthz too, to show it has no query.
            LOG_POLLS="on",
            # As in the image: nothing compiled into the checkout.
            PYTHONDONTWRITEBYTECODE="1",
        )
        with self.log.open("w") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
                [
                    *(sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF)),
                    *("--bind", f"127.0.0.1:{self.port}"),
                ],
                cwd=ROOT,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"gunicorn did not listen within {timeout} s\n{self.log.read_text()}")

    def get(self, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def healthcheck(self) -> subprocess.CompletedProcess:
        """The Dockerfile's HEALTHCHECK command, run as Docker would inside the container
        (the port aside)."""
        python, flag, code = healthcheck_command()
        assert python == "python"
        code = code.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        return subprocess.run(  # noqa: S603 - our own interpreter and the Dockerfile's code
            [sys.executable, flag, code],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    started = {
        "healthy": Server(tmp_path, "healthy", f"sqlite:///{tmp_path / 'db.sqlite3'}"),
        # A database file in a directory that does not exist cannot be opened.
        "no database": Server(
            tmp_path, "no-database", f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}"
        ),
    }
    try:
        for server in started.values():
            server.wait_until_listening()
        yield started
    finally:
        for server in started.values():
            server.stop()


def test_gunicorn_serves_the_health_check_through_the_images_healthcheck(servers):
    server = servers["healthy"]
    result = server.healthcheck()
    assert result.returncode == 0, result.stderr
    # Why the check sends the proxy's headers: without them the app redirects to HTTPS.
    plain = server.get("/healthz", {"Host": DOMAIN})
    assert plain.status == 301
    assert plain.getheader("Location") == f"https://{DOMAIN}/healthz"
    proxied = server.get("/healthz", {"Host": DOMAIN, "X-Forwarded-Proto": "https"})
    assert proxied.status == 200


def test_the_images_healthcheck_fails_when_the_database_cannot_be_reached(servers):
    server = servers["no database"]
    proxied = server.get("/healthz", {"Host": DOMAIN, "X-Forwarded-Proto": "https"})
    assert proxied.status == 503
    result = server.healthcheck()
    assert result.returncode == 1
    assert "503" in result.stderr


def test_gunicorn_logs_requests_without_their_query_strings(servers):
    server = servers["healthy"]
    response = server.get(
        f"/healthz?student_number={STUDENT_NUMBER}",
        {"Host": DOMAIN, "X-Forwarded-Proto": "https", "Referer": f"/?q={STUDENT_NUMBER}"},
    )
    assert response.status == 200
    deadline = time.monotonic() + 5
    while "/healthz" not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    output = server.log.read_text()
    assert '"GET /healthz HTTP/1.1" 200' in output
    assert STUDENT_NUMBER not in output
    assert "student_number" not in output


def test_gunicorn_writes_no_control_socket_into_the_home_directory(servers):
    assert not (servers["healthy"].home / ".gunicorn").exists()


# --- the scheduler's crontab --------------------------------------------------------------


def crontab_jobs() -> dict[str, str]:
    """Each job's command and its five time fields, as the crontab writes them.
    supercronic checks the syntax when the image is built (`supercronic -test`)."""
    jobs = {}
    for line in CRONTAB.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            *fields, command = line.split(maxsplit=5)
            jobs[command] = " ".join(fields)
    return jobs


def test_the_crontab_runs_each_job_when_the_service_needs_it():
    # On the service's clock (compose sets TZ): the report an hour after the drop-in
    # closes, on weekdays; students' emails the app could not send at once, every minute;
    # retention every night before the backup, so the backup holds no more than the
    # service keeps; nothing in the hour daylight saving skips or repeats.
    assert crontab_jobs() == {
        "python manage.py send_daily_report": "0 13 * * 1-5",
        "python manage.py send_student_emails": "* * * * *",
        "python manage.py anonymise_old_visits": "0 1 * * *",
        "/app/deploy/backup/backup.sh": "30 1 * * *",
    }


def test_the_crontab_calls_the_backup_script_the_image_carries():
    backup = ROOT / "deploy" / "backup" / "backup.sh"
    assert backup.is_file(), "deploy/backup/backup.sh is what the scheduler runs nightly"
    assert os.access(backup, os.X_OK)
    assert backup.read_text().startswith("#!")


def manage_py_commands() -> set[str]:
    """Every NAME the crontab runs as `python manage.py NAME`."""
    return {
        name
        for command in crontab_jobs()
        for name in re.findall(r"python manage\.py ([a-z_]+)", command)
    }


def test_the_crontabs_management_commands_exist(tmp_path: Path):
    """Each `python manage.py NAME` the crontab runs answers `--help`."""
    environment = clean_environment(
        tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", TZ="Australia/Perth"
    )
    commands = manage_py_commands()
    assert commands == {"send_daily_report", "send_student_emails", "anonymise_old_visits"}
    running = {
        name: subprocess.Popen(  # noqa: S603 - our own commands
            [sys.executable, "manage.py", name, "--help"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in commands
    }
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, f"{name}: {stderr}"
        assert f"manage.py {name}" in stdout


# --- the proxy's Caddyfile --------------------------------------------------------------


def caddy(*arguments: str, tmp_path: Path, domain: str | None) -> subprocess.CompletedProcess:
    executable = shutil.which("caddy")
    if executable is None:
        pytest.skip("caddy is not installed (Debian's `caddy` package provides it)")
    environment = clean_environment(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"))
    if domain is not None:
        environment["RESQ_DOMAIN"] = domain
    return subprocess.run(  # noqa: S603 - caddy, found on PATH, with our own config
        [executable, *arguments, "--adapter", "caddyfile", "--config", str(CADDYFILE)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_caddy_accepts_the_caddyfile_and_proxies_https_for_the_domain(tmp_path: Path):
    validated = caddy("validate", tmp_path=tmp_path, domain=DOMAIN)
    assert validated.returncode == 0, validated.stderr
    adapted = caddy("adapt", tmp_path=tmp_path, domain=DOMAIN)
    assert adapted.returncode == 0, adapted.stderr
    [server] = json.loads(adapted.stdout)["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]
    [route] = server["routes"]
    assert route["match"] == [{"host": [DOMAIN]}]
    [subroute] = route["handle"]
    [[handler]] = [inner["handle"] for inner in subroute["routes"]]
    # Every web container, looked up again every 5 s; a request waits up to 5 s for one.
    assert handler == {
        "handler": "reverse_proxy",
        "dynamic_upstreams": {"source": "a", "name": "web", "port": "8000", "refresh": 5 * 10**9},
        "load_balancing": {"try_duration": 5 * 10**9},
    }
    assert "file_server" not in adapted.stdout


def test_caddy_refuses_the_caddyfile_without_a_domain(tmp_path: Path):
    validated = caddy("validate", tmp_path=tmp_path, domain=None)
    assert validated.returncode != 0
