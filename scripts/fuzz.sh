#!/usr/bin/env bash
# Fuzz the API with schemathesis against a live daphne server (docs/security.md, "Fuzzing").
#
# - A throwaway PostgreSQL database (FUZZ_DATABASE, default wf_fuzz) is recreated, migrated and
#   seeded with seed_demo; in Redis db FUZZ_REDIS_DB (default 7) every key the run writes starts with
#   TEST_REDIS_PREFIX (default fuzz-<pid>; config/settings_test.py), and those keys are deleted at the end.
# - daphne serves the project on a free port; a JWT of the demo org admin authenticates every call.
# - schemathesis (its own venv .venv-fuzz, pinned in requirements-fuzz.txt: it brings the PyPI
#   `requests` library and a pytest plugin, which must never reach the project's venv) runs from
#   /tmp so our `requests/` app cannot shadow that library.
# - Checks: not_a_server_error, response_schema_conformance and max_response_time: any answer slower
#   than FUZZ_MAX_RESPONSE_TIME seconds (default 2, on this tiny database) is a failure.
# - Hostile values (scripts/fuzz_hooks.py, loaded through SCHEMATHESIS_HOOKS) replace one value of
#   two thirds of the bodies, query strings and path ids of the fuzzing phase: deep nesting, huge and negative
#   numbers, year 0 and impossible dates, long and NUL-carrying strings, malformed ids.
# - Budget: FUZZ_MAX_EXAMPLES cases per operation (default 8) and FUZZ_MAX_TIME seconds (default 150).
#   Exit status is schemathesis'.
# - One worker thread (FUZZ_WORKERS, default 1): with two, Hypothesis parsing sources in both threads
#   at once hit CPython 3.11.7's "AST constructor recursion depth mismatch" (a thread-safety bug of
#   the interpreter, fixed in later 3.11 releases) and the run reported it as a failed case. One
#   worker still makes ~1,700 cases in the suite's 45 s.
# Report: FUZZ_OUT (default test-artifacts/fuzz/: JUnit XML, NDJSON events, logs); last line "fuzz: N cases ...".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"
FUZZ_VENV="$ROOT/.venv-fuzz"
PG_URL=${FUZZ_PG_URL:-postgres://postgres@127.0.0.1:5432}
DB=${FUZZ_DATABASE:-wf_fuzz}
REDIS_BASE=${FUZZ_REDIS_BASE:-redis://127.0.0.1:6379}
REDIS_DB=${FUZZ_REDIS_DB:-7}
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-8}
MAX_TIME=${FUZZ_MAX_TIME:-150}
MAX_RESPONSE_TIME=${FUZZ_MAX_RESPONSE_TIME:-2}
SEED=${FUZZ_SEED:-20260}
OUT=${FUZZ_OUT:-$ROOT/test-artifacts/fuzz}
rm -rf "$OUT" && mkdir -p "$OUT"

if [ ! -x "$FUZZ_VENV/bin/schemathesis" ] || ! cmp -s requirements-fuzz.txt "$FUZZ_VENV/.requirements"; then
  python3 -m venv "$FUZZ_VENV"
  "$FUZZ_VENV/bin/pip" install -q --disable-pip-version-check -r requirements-fuzz.txt
  cp requirements-fuzz.txt "$FUZZ_VENV/.requirements"
fi

export DJANGO_SETTINGS_MODULE=config.settings_test
export DATABASE_URL="$PG_URL/$DB" REDIS_URL="$REDIS_BASE/$REDIS_DB" CELERY_BROKER_URL="$REDIS_BASE/$REDIS_DB"
export TEST_REDIS_PREFIX=${TEST_REDIS_PREFIX:-fuzz-$$}
# Limits high enough that the fuzzer measures the API, not the rate limiter; long-lived access token.
export API_THROTTLE_RATE=1000000/min LOGIN_RATE_PER_IP=100000/m LOGIN_RATE_PER_ACCOUNT=100000/m \
  REFRESH_RATE_PER_IP=100000/m JWT_ACCESS_MINUTES=120 MEDIA_ROOT="$OUT/media"

"$PY" - <<EOF
import psycopg
with psycopg.connect("$PG_URL/postgres", autocommit=True) as c:
    c.execute('DROP DATABASE IF EXISTS "$DB" WITH (FORCE)')
    c.execute('CREATE DATABASE "$DB"')
EOF
delete_keys() {
  "$PY" -c 'import sys, redis; r = redis.Redis.from_url(sys.argv[1]); ks = list(r.scan_iter(match=sys.argv[2] + ":*", count=1000)); ks and r.unlink(*ks)' \
    "$REDIS_BASE/$REDIS_DB" "$TEST_REDIS_PREFIX"
}
delete_keys
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py seed_demo >/dev/null

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
"$ROOT/.venv/bin/daphne" -b 127.0.0.1 -p "$PORT" config.asgi:application >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; delete_keys' EXIT
TOKEN=$("$PY" - "$BASE" <<'EOF'
import sys, time
import httpx
base = sys.argv[1]
for _ in range(150):
    try:
        if httpx.get(f"{base}/health/live/", timeout=1).status_code == 200:
            break
    except httpx.TransportError:
        time.sleep(0.2)
login = httpx.post(f"{base}/api/v1/auth/login/", json={"email": "admin@acme.example", "password": "Demo-Pass-2026"})
login.raise_for_status()
print(login.json()["access"])
EOF
)

set +e
(
  cd /tmp &&
    SCHEMATHESIS_HOOKS="$ROOT/scripts/fuzz_hooks.py" FUZZ_HOSTILE_LOG="$OUT/hostile.log" \
    timeout --signal=INT $((MAX_TIME + 60)) "$FUZZ_VENV/bin/schemathesis" run "$BASE/api/schema/" \
      --checks not_a_server_error,response_schema_conformance \
      --max-response-time "$MAX_RESPONSE_TIME" \
      --header "Authorization: Bearer $TOKEN" \
      --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" \
      --phases ${FUZZ_PHASES:-examples,coverage,fuzzing} --workers "${FUZZ_WORKERS:-1}" --request-timeout 20 --no-shrink \
      --report junit,ndjson --report-dir "$OUT" --output-truncate false
) | tee "$OUT/schemathesis.log"
STATUS=${PIPESTATUS[0]}
set -e
CASES=$(grep -Eo '[0-9]+ generated' "$OUT/schemathesis.log" | tail -1 | grep -Eo '[0-9]+' || echo "?")
HOSTILE=$(wc -l <"$OUT/hostile.log" 2>/dev/null || echo 0)
echo "fuzz: $CASES cases ($HOSTILE with a hostile value), exit $STATUS, server errors in the server log: $(grep -c 'Internal Server Error' "$OUT/server.log" || true); report in $OUT"
exit "$STATUS"
