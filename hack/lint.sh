#!/bin/bash
# lint.sh: gofmt, go vet, the dependency rule (depcheck.sh), shellcheck on the
# shell scripts, staticcheck when installed, and a warning for Go files over
# the 800-line budget (STYLE.md). Exits 1 if any check fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH=/usr/local/go/bin:$PATH

failed=()
step() {
	local name=$1
	shift
	echo "== $name"
	"$@" || failed+=("$name")
}

gofiles() {
	find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './bin/*' -print0
}

check_gofmt() {
	local out
	out=$(gofiles | xargs -0 -r gofmt -l)
	[[ -z $out ]] || { echo "gofmt needed:"; echo "$out"; return 1; }
}

step gofmt check_gofmt
step "go vet" go vet ./...
step depcheck hack/depcheck.sh

mapfile -t scripts < <(ls hack/*.sh .ci/run 2>/dev/null)
if command -v shellcheck >/dev/null; then
	step shellcheck shellcheck "${scripts[@]}"
else
	echo "== shellcheck: not installed (hack/setup.sh installs it)"
fi
if command -v staticcheck >/dev/null; then
	step staticcheck staticcheck ./...
fi

echo "== file length"
while IFS= read -r -d '' f; do
	n=$(wc -l <"$f")
	((n > 800)) && echo "warning: $f has $n lines (budget 800)"
done < <(gofiles)

if ((${#failed[@]})); then
	echo "lint: failed: ${failed[*]}" >&2
	exit 1
fi
echo "lint: ok"
