#!/usr/bin/env bash
# One prepared GPU check, for whoever is lent a GPU machine: builds and installs
# latentcore with its CUDA module, runs every tests/*_cuda.py (and
# tests/test_twins.py when present), then bench/bench_gpu.py (each area on the
# GPU against the CPU), and writes one summary: $OUT/summary.md, also printed
# last. Each stage has a time limit inside one budget (GPU_CHECK_BUDGET, default
# 320 s: a lent machine gives 15 minutes, starts included); a stage that fails
# or runs out of time does not stop the next ones, and the summary says which
# failed. Exit status 0 when every stage passed.
#
#   bash bench/gpu_check.sh            # from the repository root
#
# Environment: OUT (default bench/out), PYTHON (default python3), CUDA_ARCH
# (CMAKE_CUDA_ARCHITECTURES, default 90: H100/H200 code only, half the compile
# time of the default 80-real;90), GPU_CHECK_BUDGET (seconds, default 320; the
# stages' kill grace can add 30 s).
# Files under $OUT: summary.md, build.log, pytest.log, pytest.xml (junit),
# bench.log, bench_gpu.md, bench_gpu.json.

set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-bench/out}
PYTHON=${PYTHON:-python3}
CUDA_ARCH=${CUDA_ARCH:-90}
BUDGET=${GPU_CHECK_BUDGET:-320}
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH=/usr/local/cuda/bin:$PATH  # CMake looks for nvcc on the PATH
fi
START=$(date +%s)
STAGES=()  # "name|result|seconds|note", one per stage, for the summary

elapsed() { echo $(( $(date +%s) - START )); }

# limit WANTED RESERVE: WANTED seconds, or less so that RESERVE seconds of the
# budget are left for the stages after this one (never under 20 s).
limit() {
    local left=$(( BUDGET - $(elapsed) - $2 ))
    (( left < $1 )) && set -- "$left"
    (( $1 < 20 )) && set -- 20
    echo "$1"
}

# stage NAME SECONDS LOG COMMAND...: runs COMMAND under timeout, its output in LOG.
stage() {
    local name=$1 seconds=$2 log=$3 rc t0
    shift 3
    echo "== $name (at most ${seconds} s): $*"
    t0=$(date +%s)
    timeout -k 10 "$seconds" "$@" >"$log" 2>&1
    rc=$?
    LAST_SECONDS=$(( $(date +%s) - t0 ))
    if (( rc == 124 || rc == 137 )); then
        LAST_RESULT="**TIMEOUT** after ${seconds} s"
    elif (( rc == 0 )); then
        LAST_RESULT="pass"
    else
        LAST_RESULT="**FAIL** (exit status $rc)"
    fi
    echo "== $name: $LAST_RESULT in ${LAST_SECONDS} s; the end of $log:"
    tail -n 15 "$log" | cut -c1-300
    return "$rc"
}

# ---------------------------------------------------------------- machine
GPU_LINE=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
GPU_LINE=${GPU_LINE:-"no GPU found by nvidia-smi"}
NVCC_LINE=$(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' | head -n 1)
CPU_LINE="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
PY_LINE=$("$PYTHON" -c "import sys, numpy; v = sys.version.split()[0]
try:
    import cupy; c = 'cupy ' + cupy.__version__
except Exception as e: c = 'no cupy (' + type(e).__name__ + ')'
print('Python', v + ', numpy', numpy.__version__ + ',', c)" 2>&1 | tail -n 1)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (no .git here)")
echo "== machine: GPU $GPU_LINE; nvcc ${NVCC_LINE:-not found}; CPU $CPU_LINE; $PY_LINE"

# ---------------------------------------------------------------- 1. build and install
# --no-deps/--no-index: the device machine has no network; the dependencies are
# expected installed. The build folder stays outside the repository.
BUILD_SECONDS=$(limit 180 140)
if stage "build + install" "$BUILD_SECONDS" "$OUT/build.log" \
        "$PYTHON" -m pip install --no-build-isolation --no-deps --no-index -v \
        -C build-dir=/tmp/latentcore-gpu-check-build \
        -C "cmake.define.CMAKE_CUDA_ARCHITECTURES=$CUDA_ARCH" . ; then
    # The install must hold the CUDA module: without it every GPU test skips.
    if (cd /tmp && "$PYTHON" -c "import latentcore._cuda" >>"$OUT/build.log" 2>&1); then
        NOTE="pip install --no-build-isolation .; CUDA architectures $CUDA_ARCH"
    else
        LAST_RESULT="**FAIL**: installed without latentcore._cuda (see build.log)"
        NOTE="nvcc not found by CMake, or the CUDA module does not import"
    fi
else
    NOTE="see build.log"
fi
echo "== build + install took ${LAST_SECONDS} s"
STAGES+=("build + install|$LAST_RESULT|$LAST_SECONDS|$NOTE")

# ---------------------------------------------------------------- 2. CUDA tests
TESTS=(tests/*_cuda.py)
[[ -f tests/test_twins.py ]] && TESTS+=(tests/test_twins.py)
TIMEOUT_FLAG=()
"$PYTHON" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_FLAG=(--timeout=120)
TEST_SECONDS=$(limit 120 70)
# The installed package is imported (the source tree keeps it under python/).
stage "CUDA tests" "$TEST_SECONDS" "$OUT/pytest.log" \
    "$PYTHON" -m pytest -q -rfE -p no:cacheprovider --junitxml="$OUT/pytest.xml" \
    ${TIMEOUT_FLAG[@]+"${TIMEOUT_FLAG[@]}"} "${TESTS[@]}"
STAGES+=("CUDA tests|$LAST_RESULT|$LAST_SECONDS|${TESTS[*]}")

# ---------------------------------------------------------------- 3. GPU vs CPU benchmark
BENCH_SECONDS=$(limit 240 10)
stage "GPU vs CPU benchmark" "$BENCH_SECONDS" "$OUT/bench.log" \
    "$PYTHON" bench/bench_gpu.py --budget $(( BENCH_SECONDS * 2 / 3 )) \
    --markdown "$OUT/bench_gpu.md" --json "$OUT/bench_gpu.json"
STAGES+=("GPU vs CPU benchmark|$LAST_RESULT|$LAST_SECONDS|bench/bench_gpu.py")

# ---------------------------------------------------------------- summary
TEST_COUNTS=$("$PYTHON" - "$OUT/pytest.xml" <<'EOF' 2>/dev/null
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("no junit report (the run did not finish: see pytest.log)")
    sys.exit()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
print(f"{passed} passed, {total['failures']} failed, {total['errors']} errors, {total['skipped']} skipped "
      f"of {total['tests']}" + (" (all skipped: no GPU or no CUDA module?)" if total["tests"] and
                                total["skipped"] == total["tests"] else ""))
bad = [(case, child) for case in root.iter("testcase") for child in case
       if child.tag in ("failure", "error")]
for case, child in bad[:40]:
    message = " ".join((child.get("message") or child.text or "").split())[:200]
    print(f"- {child.tag}: {case.get('classname')}::{case.get('name')}: {message}")
if len(bad) > 40:
    print(f"- ... and {len(bad) - 40} more (pytest.log)")
EOF
)
TEST_COUNTS=${TEST_COUNTS:-"no junit report (see pytest.log)"}

{
    echo "# latentcore GPU check — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- GPU: $GPU_LINE; nvcc ${NVCC_LINE:-not found}"
    echo "- CPU: $CPU_LINE; $PY_LINE"
    echo "- commit: $COMMIT (the working tree as sent); total $(elapsed) s of a $BUDGET s budget"
    echo
    echo "| stage | result | seconds | note |"
    echo "| --- | --- | --- | --- |"
    for s in "${STAGES[@]}"; do
        IFS='|' read -r name result secs note <<<"$s"
        echo "| $name | $result | $secs | $note |"
    done
    echo
    echo "## CUDA tests"
    echo
    echo "$TEST_COUNTS"
    echo
    echo "## GPU vs CPU"
    echo
    if [[ -s "$OUT/bench_gpu.md" ]]; then
        cat "$OUT/bench_gpu.md"
    else
        echo "no table: bench_gpu.py stopped before its first case; the end of bench.log:"
        echo
        echo '```'
        tail -n 20 "$OUT/bench.log" 2>/dev/null | cut -c1-300
        echo '```'
    fi
} >"$OUT/summary.md"

echo
cat "$OUT/summary.md"
for s in "${STAGES[@]}"; do
    [[ $s == *"|pass|"* ]] || exit 1
done
exit 0
