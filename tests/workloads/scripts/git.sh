#!/bin/bash
# git workload: init, add, commit, branch, merge, log, gc. Prints "git: OK".
set -euo pipefail
fail() { echo "git: FAIL: $*"; exit 1; }
export GIT_AUTHOR_NAME=zviz GIT_AUTHOR_EMAIL=zviz@example.invalid
export GIT_COMMITTER_NAME=zviz GIT_COMMITTER_EMAIL=zviz@example.invalid
d=$(mktemp -d "$HOME/git.XXXXXX")
cd "$d"
git init -q -b main repo
cd repo
git config core.fsync all
for i in $(seq 1 30); do echo "file $i" >"f$i"; done
git add .
git commit -q -m "first"
git checkout -q -b topic
echo change >>f1
git commit -q -am "on topic"
git checkout -q main
echo other >f31
git add f31
git commit -q -m "on main"
git merge -q --no-edit topic
[[ $(git rev-list --count HEAD) -eq 4 ]] || fail "commit count $(git rev-list --count HEAD)"
[[ $(git log --oneline) == *"on topic"* ]] || fail "log"
[[ -z $(git status --porcelain) ]] || fail "dirty tree: $(git status --porcelain)"
git gc -q
git fsck --no-progress
git clone -q "$d/repo" "$d/clone"
[[ $(git -C "$d/clone" log -1 --format=%s) == "Merge branch 'topic'" ]] || fail "clone"
git log -1 --format='git: %s'
cd "$HOME"
rm -rf "$d"
echo "git: OK"
