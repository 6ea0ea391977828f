#!/bin/bash
# coreutils workload: cp -a, mv, ln -s, chmod, sort, find and friends on a
# small tree in the working directory. Prints "coreutils: OK".
set -euo pipefail
fail() { echo "coreutils: FAIL: $*"; exit 1; }
d=$(mktemp -d "$HOME/cu.XXXXXX")
cd "$d"

mkdir -p src/a/b src/c
for i in $(seq 1 50); do echo "line $((i * 7919 % 101))" >"src/a/f$i"; done
printf 'z\ny\nx\n' >src/a/b/letters
ln -s ../a/b/letters src/c/link
ln src/a/f1 src/c/hard
mkfifo src/c/fifo
chmod 0640 src/a/f2
chmod u+x,g-r src/a/f3
touch -d '2001-02-03 04:05:06' src/a/f4
cp -a src dst
# (diff cannot compare fifos: checked below)
diff -r --no-dereference -x fifo src dst >/dev/null || { ls -lR src dst; fail "cp -a copy differs"; }
[[ $(stat -c %a dst/a/f2) == 640 ]] || fail "cp -a mode $(stat -c %a dst/a/f2)"
[[ $(stat -c %Y dst/a/f4) == "$(stat -c %Y src/a/f4)" ]] || fail "cp -a lost the mtime"
[[ -L dst/c/link && $(readlink dst/c/link) == ../a/b/letters ]] || fail "cp -a lost the symlink"
[[ -p dst/c/fifo ]] || fail "cp -a lost the fifo"
[[ $(stat -c %h dst/a/f1) == 2 ]] || fail "cp -a lost the hard link"
cat dst/c/link >/dev/null
mv dst moved
mv moved/a/f5 moved/c/
mv -T moved/c moved/d
[[ -f moved/d/f5 && ! -e moved/a/f5 ]] || fail "mv"
cp --reflink=auto --sparse=always moved/a/f6 sparse
install -m 0755 moved/a/f7 installed
[[ $(stat -c %a installed) == 755 ]] || fail "install -m"
sort -n -k2 src/a/f* | uniq -c | sort -rn | head -3 >top
[[ $(wc -l <top) -eq 3 ]] || fail "sort | uniq | sort"
[[ $(sort src/a/b/letters | tr -d '\n') == xyz ]] || fail "sort"
[[ $(seq 1 20000 | sort -R | sort -n -S 64K --parallel=2 | tail -1) == 20000 ]] || fail "big sort"
[[ $(find src -type f -name 'f*' | wc -l) -eq 50 ]] || fail "find -name: $(find src -type f -name 'f*' | wc -l)"
[[ $(find src -type l | wc -l) -eq 1 ]] || fail "find -type l"
[[ $(find src -type f -perm -u+x) == src/a/f3 ]] || fail "find -perm: $(find src -type f -perm -u+x)"
[[ -z $(find src -newer src/a/f4 -name f4) ]] || fail "find -newer"
find moved -name 'f1*' -exec cat {} + >/dev/null
find moved -depth -type d -print0 | xargs -0 -r chmod 0755
sha256sum src/a/f* >sums && sha256sum -c --quiet sums
du -s src >/dev/null
df -h . >/dev/null
ls -laR src >/dev/null
[[ $(readlink -f src/c/link) == "$d/src/a/b/letters" ]] || fail "readlink -f: $(readlink -f src/c/link)"
stat src >/dev/null
split -n 3 src/a/f9 part. && cat part.* | cmp - src/a/f9
tail -n 3 src/a/f1 >/dev/null
head -c 100 /dev/urandom | od -An -tx1 >/dev/null
date -u +%s >/dev/null
env | sort >/dev/null
timeout 5 sleep 0.01
nproc >/dev/null
id >/dev/null
cd "$HOME"
rm -rf "$d"
[[ ! -e $d ]] || fail "rm -rf"
echo "coreutils: OK"
