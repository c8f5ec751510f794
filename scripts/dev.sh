#!/usr/bin/env bash
# One entry point for a fresh clone: creates .venv, installs driftline with its
# embedded broker and Redis, then runs what you ask for.
#
#   scripts/dev.sh demo [--duration SECONDS]   the main job on the embedded default
#   scripts/dev.sh test [PYTEST ARGS]          the whole test suite
#   scripts/dev.sh driftline ...               any driftline command
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
case "$cmd" in
    demo) exec "$venv/bin/driftline" demo "$@" ;;
    test)
        set +e
        "$venv/bin/python" -m pytest "$@"
        rc=$?
        # pytest exits 5 when it collected no test: that is a failure here.
        [ $rc -eq 5 ] && echo "driftline: no test ran" >&2
        exit $rc ;;
    driftline) exec "$venv/bin/driftline" "$@" ;;
    *) echo "usage: scripts/dev.sh {demo|test|driftline} [args]" >&2; exit 2 ;;
esac
