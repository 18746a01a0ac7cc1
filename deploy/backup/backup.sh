#!/usr/bin/env bash
# Back up ResQ's PostgreSQL database: one pg_dump (custom format) into BACKUP_DIR,
# verified, then old backups pruned (14 daily, 8 weekly). docs/backups.md has the
# restore procedure.
#
#   DATABASE_URL=postgres://user:pass@host:5432/resq deploy/backup/backup.sh
#
# Environment:
#   DATABASE_URL      the database to dump (postgres://, postgresql://, psql:// or pgsql://).
#                     Unset: libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
#   BACKUP_DIR        where backups go (default /backups)
#   BACKUP_KEEP_DAILY, BACKUP_KEEP_WEEKLY   retention (default 14 and 8)
#   PYTHON            the interpreter for the retention step (default python3)
#
# The dump is written under a temporary name in BACKUP_DIR and renamed only once
# pg_dump has finished, the file is on disk and pg_restore can read its table of
# contents: a file named resq-*.dump is always a whole backup. It exits non-zero, and
# prunes nothing, if any step fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
backup_dir="${BACKUP_DIR:-/backups}"
keep_daily="${BACKUP_KEEP_DAILY:-14}"
keep_weekly="${BACKUP_KEEP_WEEKLY:-8}"
python="${PYTHON:-python3}"

log() { printf 'backup: %s\n' "$*"; }
fail() { printf 'backup: FAILED: %s\n' "$*" >&2; exit 1; }

# pg_dump takes a URL as its database name, but only libpq's schemes.
target=()
if [ -n "${DATABASE_URL:-}" ]; then
  url="$DATABASE_URL"
  case "$url" in
    psql://*|pgsql://*) url="postgresql://${url#*://}" ;;
    postgres://*|postgresql://*) ;;
    *) fail "DATABASE_URL is not a PostgreSQL URL (backups are for PostgreSQL only)" ;;
  esac
  target=(--dbname="$url")
fi

[ -d "$backup_dir" ] || fail "no backup directory at $backup_dir"
# Backups hold student names and numbers: readable by this user only.
umask 077

name="resq-$(date +%Y%m%dT%H%M%S%z).dump"
final="$backup_dir/$name"
[ -e "$final" ] && fail "$name already exists"
partial="$(mktemp "$backup_dir/.$name.XXXXXX.partial")"
trap 'rm -f "$partial"' EXIT

started=$SECONDS
# Custom format: compressed, and pg_restore can restore all of it or any table.
# pg_dump reads one consistent snapshot, so the desk can keep working meanwhile.
pg_dump --format=custom --file="$partial" "${target[@]}" || fail "pg_dump exited with $?"

# Is it readable, and does it hold data? (--list reads the whole table of contents.)
toc="$(pg_restore --list "$partial")" || fail "pg_restore cannot read the dump"
tables="$(grep -c ' TABLE DATA ' <<<"$toc" || true)"
[ "$tables" -gt 0 ] || fail "the dump holds no table data"

# On disk before it gets its real name, and the name on disk before we say so.
sync "$partial"
mv "$partial" "$final"
trap - EXIT
sync "$backup_dir"

size="$(du -h "$final" | cut -f1)"
log "wrote $name ($size, $tables tables) in $((SECONDS - started)) s"

# A backup that died with its machine leaves a temporary file behind.
find "$backup_dir" -maxdepth 1 -name '.resq-*.partial' -mmin +1440 -print -delete \
  | sed 's|.*/|backup: removed stale |'

"$python" "$here/retention.py" --daily "$keep_daily" --weekly "$keep_weekly" "$backup_dir"
