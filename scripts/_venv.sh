# Sourced by scripts/run and scripts/test: make .venv with a Python >= 3.11 and install into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python() {
  for candidate in "${FIELDCHECK_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "fieldcheck needs Python 3.11 or newer (set FIELDCHECK_PYTHON to its path)" >&2
  return 1
}

ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$extras"
  # Reinstall only when pyproject.toml changed since the last install.
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip uv >/dev/null 2>&1 || true
    if [ -x "$VENV/bin/uv" ]; then
      VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -e "$ROOT[$extras]" ||
        "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]"
    else
      "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]"
    fi
    touch "$stamp"
  fi
}
