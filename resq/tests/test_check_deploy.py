"""`manage.py check --deploy` finds nothing to warn about in the production settings."""

import subprocess
import sys

from django.conf import settings

from resq.tests.test_headers import production_environment


def test_it_passes_the_deployment_checklist_without_a_warning(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=settings.BASE_DIR,
        # As the image runs: the hashed static manifest on, as DEBUG off implies.
        env=production_environment(tmp_path, STATIC_MANIFEST="on"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced).", (
        result.stdout + result.stderr
    )


def test_it_would_report_a_weakened_setting(tmp_path):
    # The same check with HSTS switched off must complain, or the test above proves nothing.
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=production_environment(tmp_path, SECURE_HSTS_SECONDS="0"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr
