"""Send the emails students asked for that are due: run every minute by the scheduler.

Each is normally sent moments after the change that called for it, by a background
thread of the app process (queueing/notices.py); this picks up what that could not send
(a mail server down, an app restarted) and retries with a growing wait until it goes or
is given up. Idempotent: a notice is sent once, whoever sends it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from queueing import notices


class Command(BaseCommand):
    help = "Send the students' 'you're next' and 'session starting' emails that are due."

    def handle(self, *args: Any, **options: Any) -> None:
        sent = notices.send_due()
        if sent:
            self.stdout.write(f"Sent {sent} email(s) to students.")
