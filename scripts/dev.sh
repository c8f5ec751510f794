#!/usr/bin/env bash
# One entry point for a fresh clone: creates .venv, installs driftline with its
# embedded broker and Redis, then runs what you ask for.
#
#   scripts/dev.sh demo [--duration SECONDS]   the main job on the embedded default (python -m scripts.demo)
#   scripts/dev.sh test [PYTEST ARGS]          check (below) first, then the whole test suite; what CI runs
#   scripts/dev.sh check                       ruff check, ruff format --check and mypy, as pyproject.toml sets them
#   scripts/dev.sh driftline ...               any driftline command
#
# The scripts are a package run from the repository root: .venv/bin/python -m scripts.NAME
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
venv="$root/.venv"
stamp="$venv/.driftline-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "driftline: installing into .venv (first run only)" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
    echo "$want" > "$stamp"
fi
cmd="${1:-test}"
[ $# -gt 0 ] && shift
# The test harness starts real Prometheus and Alertmanager servers and drives the dashboard in a
# headless Chromium: Debian's packages.
need_debs() {
    local missing=()
    command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
    command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
        || missing+=(prometheus-alertmanager)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    echo "driftline: installing ${missing[*]} (Debian packages the tests run)" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
}
# Lint, format and types: every step runs, so one report shows every kind of problem;
# any failure fails the check.
check() {
    local rc=0
    "$venv/bin/ruff" check . || rc=1
    "$venv/bin/ruff" format --check . || rc=1
    "$venv/bin/mypy" || rc=1
    return "$rc"
}
case "$cmd" in
    demo) exec "$venv/bin/python" -m scripts.demo "$@" ;;
    test)
        # fail fast: the suite runs only on code that passes the check
        if ! check; then
            echo "driftline: the check failed (ruff, ruff format or mypy above); no test ran" >&2
            exit 1
        fi
        need_debs
        set +e
        "$venv/bin/python" -m pytest "$@"
        rc=$?
        # pytest exits 5 when it collected no test: that is a failure here.
        [ $rc -eq 5 ] && echo "driftline: no test ran" >&2
        exit $rc ;;
    check)
        rc=0
        check || rc=1
        exit "$rc" ;;
    driftline) exec "$venv/bin/driftline" "$@" ;;
    *) echo "usage: scripts/dev.sh {demo|test|check|driftline} [args]" >&2; exit 2 ;;
esac
