#!/bin/bash
# depcheck.sh enforces that dependencies point down (STYLE.md, "Shape"):
#   cmd/zviz -> internal/container, internal/initproc, internal/spec
#            -> mechanism packages -> internal/linux
# Mechanism packages never depend (even transitively) on the core, on cmd/, or
# on one another; anything may use internal/linux. Directories without Go
# files yet are ignored. Prints each violation and exits 1 if there are any.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

MOD=$(go list -m)

# One kernel mechanism each; subpackages belong to their parent.
MECHANISMS=(userns systemd apparmor seccomp landlock internal/linux internal/rootfs internal/hooks internal/wire internal/cgroups internal/nsenter)
# Importable by every package.
SHARED=(internal/linux)
# Forbidden to every mechanism.
CORE=(internal/container internal/initproc cmd)
# The only module packages cmd/zviz may import directly.
CMD_ALLOWED=(internal/container internal/initproc internal/spec internal/hostcheck apparmor)

# under PKG DIR: is module package PKG (a path relative to the module) DIR or below it?
under() { [[ $1 == "$2" || $1 == "$2"/* ]]; }

# mechanism_of PKG: the mechanism PKG belongs to, or nothing.
mechanism_of() {
	local m
	for m in "${MECHANISMS[@]}"; do
		if under "$1" "$m"; then echo "$m"; return; fi
	done
}

violations=0
violation() { echo "depcheck: $*" >&2; violations=$((violations + 1)); }

# One line per package: PATH DEP DEP ... (.Deps is what `go list -deps` walks:
# all transitive imports, tests excluded). A pattern matching nothing is fine.
listing=$(go list -e -f '{{.ImportPath}}{{range .Deps}} {{.}}{{end}}' ./... 2>/dev/null) || {
	go list -e ./... >/dev/null # show why
	exit 1
}

while read -r pkg deps; do
	[[ -n $pkg ]] || continue
	rel=${pkg#"$MOD"/}
	mech=$(mechanism_of "$rel")
	[[ -n $mech ]] || continue
	for dep in $deps; do
		[[ $dep == "$MOD"/* ]] || continue
		d=${dep#"$MOD"/}
		shared=0
		for s in "${SHARED[@]}"; do under "$d" "$s" && shared=1; done
		((shared)) && continue
		for c in "${CORE[@]}"; do
			under "$d" "$c" && violation "$rel (mechanism) depends on core package $d"
		done
		other=$(mechanism_of "$d")
		if [[ -n $other && $other != "$mech" ]]; then
			violation "$rel (mechanism) depends on mechanism $d"
		fi
	done
done <<<"$listing"

# cmd/zviz stays thin: its direct module imports are the core's entry points.
imports=$(go list -e -f '{{range .Imports}}{{.}} {{end}}' ./cmd/zviz/... 2>/dev/null || true)
for dep in $imports; do
	[[ $dep == "$MOD"/* ]] || continue
	d=${dep#"$MOD"/}
	under "$d" cmd && continue
	ok=0
	for a in "${CMD_ALLOWED[@]}"; do under "$d" "$a" && ok=1; done
	((ok)) || violation "cmd/zviz imports $d (allowed: ${CMD_ALLOWED[*]})"
done

if ((violations)); then
	echo "depcheck: $violations violation(s)" >&2
	exit 1
fi
echo "depcheck: ok"
