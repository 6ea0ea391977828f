#!/bin/bash
# bench.sh (make bench): build zviz, the static probe and the bench driver,
# then run hack/bench (cold start against runc, bwrap and a bare exec, and
# later sections). Not a test. Knobs: BENCH_N (iterations, default 50),
# BENCH_ONLY (e.g. native,bwrap,runc), BENCH_SECTIONS, BENCH_JSON (file).
# Extra arguments go to the driver (hack/bench -h lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

if [[ ,${BENCH_ONLY:-zviz}, == *,zviz,* ]]; then
	make --no-print-directory build
fi
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '-s -w' -o bin/probe ./tests/probe
go build -buildvcs=false -o bin/bench ./hack/bench

args=(-zviz bin/zviz -probe bin/probe)
if [[ -n ${BENCH_JSON:-} ]]; then
	args+=(-json "$BENCH_JSON")
fi
exec bin/bench "${args[@]}" "$@"
