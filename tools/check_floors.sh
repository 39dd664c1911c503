#!/usr/bin/env bash
# Verify pyproject.toml's dependency floors: install every dependency at exactly its `>=` version
# in a fresh virtual environment and run the test suite there. Run by hand when a floor changes
# (10 to 25 minutes, 6 GB of disk), not in CI; record the result in docs/floors.md.
#
#   tools/check_floors.sh                      # pytest -x -q -p no:cacheprovider
#   tools/check_floors.sh -q -p no:cacheprovider tests/test_api.py   # other pytest arguments
#
# What it does:
#   1. clones this repository's HEAD (committed state only: uncommitted work in the checkout
#      does not matter) into a temporary folder, and makes a fresh venv in another;
#   2. writes a constraints file with `name==floor` for every entry of `dependencies` and of the
#      `dev` extra, read from the clone's pyproject.toml (the one place floors are written);
#      every entry must have a `>=` floor, and the floor must be a released version;
#   3. `pip install -c floors.txt -e "clone[dev]"`, then runs pytest in the clone.
#
# Environment:
#   PYTHON=python3.11       the interpreter for the venv (default python3)
#   FLOORS_PYPROJECT=FILE   test the floors of FILE instead of HEAD's pyproject.toml (it is
#                           copied over the clone's, so a floor can be tried before committing)
#   KEEP=1                  keep the temporary folder (venv, clone, constraints) for a look
#
# torch: PyPI has only CUDA builds of torch for Linux x86_64 (the CPU builds are on PyTorch's
# own index, which this project's machines cannot reach), and the file of torch 2.13.0 on this
# machine's disk is not the floor. So the floor comes from PyPI as the CUDA build with its
# nvidia-* libraries and triton: about 2.5 GB to download (pip caches it) and 5 GB in the venv.
# torch needs those libraries only to import; it runs on the CPU without a GPU. (On aarch64
# PyPI's torch is a CPU build.)
#
# starlette: src/promptreel/server/app.py serves videos through starlette's FileResponse (range
# requests), but starlette comes in through fastapi, which is what pyproject.toml declares. It
# is pinned here at the oldest release the fastapi floor admits, so the service is tested on it;
# the script stops if the fastapi floor asks for another one.
set -euo pipefail

REPO=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
PYTHON=${PYTHON:-python3}
STARLETTE_FLOOR=1.6.0  # fastapi 0.164.0 requires starlette>=1.6.0
if [ "$#" -gt 0 ]; then
    PYTEST_ARGS=("$@")
else
    PYTEST_ARGS=(-x -q -p no:cacheprovider)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/promptreel-floors.XXXXXX")
cleanup() {
    if [ -n "${KEEP:-}" ]; then
        echo "check_floors: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

echo "check_floors: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $("$PYTHON" --version)"

# 1. a clone of HEAD and a fresh venv
git clone --quiet --no-hardlinks "$REPO" "$WORK/repo"
echo "check_floors: commit $(git -C "$WORK/repo" log -1 --format='%h %s' | cut -c1-100)"
if [ -n "${FLOORS_PYPROJECT:-}" ]; then
    cp "$FLOORS_PYPROJECT" "$WORK/repo/pyproject.toml"
    echo "check_floors: floors from $FLOORS_PYPROJECT (not HEAD's pyproject.toml)"
fi
"$PYTHON" -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"

# 2. the floors as exact pins
"$PY" - "$WORK/repo/pyproject.toml" >"$WORK/floors.txt" <<'EOF'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
    # `name>=floor`, maybe with a ceiling after it (`pytest>=8.4,<9.2`)
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9A-Za-z.]*)(,.*)?", requirement)
    if match is None:
        sys.exit(f"check_floors: {requirement!r} has no `>=` floor in pyproject.toml")
    print(f"{match[1]}=={match[2]}")
EOF
echo "starlette==$STARLETTE_FLOOR" >>"$WORK/floors.txt"
echo "check_floors: constraints:" $(cat "$WORK/floors.txt")

# 3. install at the floors, and test
# (pip's notes on this machine's local package folders, which hold no such versions, are dropped)
"$PY" -m pip install --progress-bar off -c "$WORK/floors.txt" -e "$WORK/repo[dev]" 2>&1 |
    { grep -v -e "^WARNING: Location 'file:" -e '^Requirement already satisfied' || true; }
"$PY" - "$STARLETTE_FLOOR" <<'EOF'
import re
import sys
from importlib.metadata import requires

# the pin above must be the oldest starlette that the installed fastapi (its floor) accepts
wanted = [r for r in requires("fastapi") if r.startswith("starlette") and "extra" not in r]
floor = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", wanted[0])
if floor is None or floor[1] != sys.argv[1]:
    sys.exit(f"check_floors: fastapi asks for {wanted[0]!r}; set STARLETTE_FLOOR to its floor")
EOF
echo "check_floors: installed:"
"$PY" -m pip freeze --exclude-editable | sed 's/^/    /'
"$PY" -m pip check || true  # report, do not stop: the suite is the judge

cd "$WORK/repo"
echo "check_floors: pytest ${PYTEST_ARGS[*]}"
status=0
PATH="$WORK/venv/bin:$PATH" "$PY" -m pytest "${PYTEST_ARGS[@]}" || status=$?
echo "check_floors: pytest exit code $status"
exit "$status"
