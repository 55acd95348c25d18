# Sourced by scripts/run and scripts/test: install exactly what uv.lock says into .venv.
#
# uv itself comes from the package index (pinned below) into .uv/, with the machine's Python >= 3.11:
# a fresh machine needs nothing else. `uv sync --frozen` installs the locked versions, never newer
# ones; update the lock with `.uv/bin/uv lock --upgrade` (see README, "Dependencies").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
UV_VERSION="0.13.9"
export UV_PROJECT_ENVIRONMENT="$VENV" UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

find_python() {
  for candidate in "${FIELDCHECK_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "fieldcheck needs Python 3.11 or newer (set FIELDCHECK_PYTHON to its path)" >&2
  return 1
}

PYTHON="$(find_python)"
UV="$ROOT/.uv/bin/uv"

ensure_uv() {
  if [ -x "$UV" ] && [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" = "$UV_VERSION" ]; then
    return 0
  fi
  echo "== installing uv $UV_VERSION into .uv" >&2
  "$PYTHON" -m venv "$ROOT/.uv"
  "$ROOT/.uv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
}

# sync [uv sync options...]: the locked dependencies (and fieldcheck itself, editable) into .venv.
sync() {
  ensure_uv
  "$UV" sync --frozen --python "$PYTHON" --quiet "$@"
  # Compiled bytecode for every module, so that no process (the tests start many; the fleet
  # benchmark restarts some under load) compiles its imports again: a process start takes 1.5 s of
  # CPU instead of 4 where PYTHONDONTWRITEBYTECODE is set. Up-to-date files are skipped.
  "$VENV/bin/python" -m compileall -q -j 0 "$VENV/lib" "$ROOT/src" >/dev/null 2>&1 || true
}
