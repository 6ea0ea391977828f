#!/bin/bash
# tar workload: create and extract gzip and xz archives of a tree and compare
# the result with the original. Prints "tar: OK".
set -euo pipefail
fail() { echo "tar: FAIL: $*"; exit 1; }
d=$(mktemp -d "$HOME/tar.XXXXXX")
cd "$d"
mkdir -p tree/sub/deeper
for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom >"tree/sub/r$i"; done
seq 1 100000 >tree/numbers
ln -s numbers tree/link
ln tree/numbers tree/sub/hard
chmod 0600 tree/sub/r1
touch -d '2010-01-01' tree/sub/deeper
for z in gz xz; do
	case $z in gz) flag=-z ;; xz) flag=-J ;; esac
	tar -c "$flag" -f "tree.tar.$z" tree
	mkdir "out-$z"
	tar -x "$flag" -f "tree.tar.$z" -C "out-$z"
	diff -r --no-dereference tree "out-$z/tree" || fail "$z: extracted tree differs"
	tar -d "$flag" -f "tree.tar.$z" || fail "$z: tar --compare"
	[[ $(stat -c %a "out-$z/tree/sub/r1") == 600 ]] || fail "$z: mode"
	[[ $(stat -c %Y "out-$z/tree/sub/deeper") == "$(stat -c %Y tree/sub/deeper)" ]] || fail "$z: mtime"
	list=$(tar -t "$flag" -f "tree.tar.$z")
	grep -qx tree/link <<<"$list" || fail "$z: listing"
done
# Through pipes and the external programs, as build scripts do.
n=$(tar -cf - tree | xz -T2 -c | xz -dc | gzip -c | gunzip -c | tar -tf - | wc -l)
[[ $n -eq 46 ]] || fail "pipeline listing: $n entries"
tar --xattrs -cf x.tar tree && tar --xattrs -xf x.tar -C out-gz --overwrite
cd "$HOME"
rm -rf "$d"
echo "tar: OK"
