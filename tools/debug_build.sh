#!/usr/bin/env bash
# Run the whole test suite against a DEBUG build of emu's Cython fast path.
#
#   tools/debug_build.sh [PYTEST ARGS...]     e.g.  tools/debug_build.sh -k traces
#
# The debug build (EMU_DEBUG_BUILD=1, see setup.py) turns every Cython check
# on: bounds and wrap-around checks on memoryview indexing, initialised
# memoryviews, Python division semantics; -O0 -g.  An out-of-bounds access in
# the fast path then raises IndexError ("Out of bounds on buffer access") at
# its line of emu/_fastpath.pyx instead of reading or writing past an array.
#
# The working tree is not touched: the tree as it is now (tracked and
# untracked files, uncommitted edits included; build products, the generated
# emu/_codes.pxi, caches and .git left out) is copied to a temporary directory,
# built there (setup.py generates emu/_codes.pxi again from emu/codes.py) with
#     EMU_DEBUG_BUILD=1 python setup.py build_ext --inplace --force
# and tested there with
#     python -m pytest -q -x [PYTEST ARGS...]
# Much slower than the optimized build; not part of the default test run.
#
# Environment: KEEP=1 keeps the copy (its path is printed); PYTHON picks the
# interpreter (default: python3).  Exit status: pytest's (1 if the build fails).
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/emu-debug-build.XXXXXX")"
cleanup() {
  if [ -n "${KEEP:-}" ]; then echo "debug_build: the copy is kept in $tmp/emu"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
copy="$tmp/emu"
mkdir "$copy"
start=$(date +%s)

echo "debug_build: copying $src to $copy"
(cd "$src" && tar -cf - \
    --exclude=./.git --exclude=./build --exclude=./dist --exclude=./out \
    --exclude='*.egg-info' --exclude='*.so' --exclude='*.pyd' \
    --exclude=./emu/_fastpath.c --exclude=./emu/_fastpath.html --exclude=./emu/_codes.pxi \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis \
    --exclude=.benchmarks .) | (cd "$copy" && tar -xf -)

cd "$copy"
echo "debug_build: EMU_DEBUG_BUILD=1 $python setup.py build_ext --inplace --force"
if ! EMU_DEBUG_BUILD=1 "$python" setup.py build_ext --inplace --force > "$tmp/build.log" 2>&1; then
  tail -n 60 "$tmp/build.log"
  echo "debug_build: FAILED to build the debug extension ($(( $(date +%s) - start )) s)"
  exit 1
fi
# The generated C must carry the bounds checks, and the copy's extension must
# be the one the tests import.
if ! grep -q "__Pyx_RaiseBufferIndexError" emu/_fastpath.c; then
  echo "debug_build: emu/_fastpath.c has no bounds checks: was EMU_DEBUG_BUILD honoured?"
  exit 1
fi
export PYTHONPATH="$copy${PYTHONPATH:+:$PYTHONPATH}"
"$python" -c "
import os, sys, emu._fastpath as f
path = os.path.realpath(f.__file__)
assert path.startswith(os.path.realpath('$copy') + os.sep), 'imported ' + path
print('debug_build: testing', path)
"
build_s=$(( $(date +%s) - start ))
echo "debug_build: built in ${build_s} s; running python -m pytest -q -x $*"

set +e
"$python" -m pytest -q -x -p no:cacheprovider "$@" 2>&1 | tee "$tmp/pytest.log"
status=${PIPESTATUS[0]}
set -e
total_s=$(( $(date +%s) - start ))
if grep -q "Out of bounds on buffer access\|IndexError" "$tmp/pytest.log"; then
  echo "debug_build: IndexError in the log (an out-of-bounds access?):"
  grep -n -B2 -A2 "Out of bounds on buffer access\|IndexError\|_fastpath.pyx:[0-9]" "$tmp/pytest.log" | head -n 60
fi
if [ "$status" -eq 0 ]; then
  echo "debug_build: PASSED in ${total_s} s (build ${build_s} s)"
else
  echo "debug_build: FAILED (pytest exit status $status) in ${total_s} s (build ${build_s} s)"
fi
exit "$status"
