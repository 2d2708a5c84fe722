#!/usr/bin/env bash
# The fidelity/speed benchmark (not part of the tests): TeaCache vs EasyCache, LazyCache and
# fewer steps on the trained proxy model. Sets itself up like run_tests.sh. Results go to
# out/benchmark/ (results.json, table.md, fidelity_vs_speedup.png). See BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="$(bash scripts/bootstrap.sh | tail -n 1)"
exec "$PY" benchmarks/run_benchmark.py "$@"
