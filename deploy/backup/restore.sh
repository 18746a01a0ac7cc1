#!/usr/bin/env bash
# Restore a backup made by backup.sh into a PostgreSQL database. docs/backups.md has
# the whole procedure (stop the app first; restart it afterwards).
#
#   deploy/backup/restore.sh [--force] DUMP [DATABASE_URL]
#
# The database is the second argument, or DATABASE_URL, or libpq's PG* variables. It
# must exist. A database that already holds tables is refused unless --force is given:
# then every object the dump holds is dropped and recreated from it (objects the dump
# does not hold are left alone, so an empty database is the cleaner target).
#
# One transaction: if anything fails, nothing is restored and the database is as it
# was. Objects are owned by the user restoring, whoever owned them before.
set -euo pipefail

usage() { echo "usage: $0 [--force] DUMP [DATABASE_URL]" >&2; exit 2; }
log() { printf 'restore: %s\n' "$*"; }
fail() { printf 'restore: FAILED: %s\n' "$*" >&2; exit 1; }

force=no
args=()
for arg in "$@"; do
  case "$arg" in
    --force) force=yes ;;
    -h|--help) usage ;;
    -*) echo "restore: unknown option $arg" >&2; usage ;;
    *) args+=("$arg") ;;
  esac
done
[ "${#args[@]}" -ge 1 ] && [ "${#args[@]}" -le 2 ] || usage
dump="${args[0]}"
url="${args[1]:-${DATABASE_URL:-}}"

target=()
if [ -n "$url" ]; then
  case "$url" in
    psql://*|pgsql://*) url="postgresql://${url#*://}" ;;
    postgres://*|postgresql://*) ;;
    *) fail "not a PostgreSQL URL" ;;
  esac
  target=(--dbname="$url")
elif [ -n "${PGDATABASE:-}" ]; then
  target=(--dbname="$PGDATABASE")
else
  # Without a database pg_restore would print SQL instead of restoring anything.
  fail "name the database: an argument, DATABASE_URL or PGDATABASE"
fi

[ -f "$dump" ] && [ -r "$dump" ] || fail "cannot read $dump"
toc="$(pg_restore --list "$dump")" || fail "$dump is not a readable backup"
tables="$(grep -c ' TABLE DATA ' <<<"$toc" || true)"
[ "$tables" -gt 0 ] || fail "$dump holds no table data"

psql_query() { psql "${target[@]}" --no-psqlrc --no-align --tuples-only --quiet \
  --set ON_ERROR_STOP=1 --command "$1"; }

database="$(psql_query 'SELECT current_database()')" || fail "cannot connect to the database"
existing="$(psql_query "
  SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'")"
if [ "$existing" -gt 0 ] && [ "$force" != yes ]; then
  fail "database $database is not empty ($existing tables, views or sequences): restore" \
    "into an empty one (docs/backups.md), or pass --force to replace what the dump holds"
fi

log "restoring $(basename "$dump") ($tables tables) into $database"
started=$SECONDS
pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error \
  "${target[@]}" "$dump" || fail "pg_restore exited with $?; nothing was restored"

visits="$(psql_query 'SELECT count(*) FROM queueing_visit' 2>/dev/null || echo '?')"
log "done in $((SECONDS - started)) s: $database holds $visits visits"
log "now restart the app, so no screen is shown a board cached before the restore"
