#!/bin/bash
# bash workload: background jobs, wait, job control basics, traps,
# pipelines, process substitution, coprocesses, read with a timeout.
# Prints "bash: OK" when every check passed.
set -euo pipefail
fail() { echo "bash: FAIL: $*"; exit 1; }
# A command failing under set -e says where, instead of a silent exit 1.
trap 'echo "bash: FAIL: line $LINENO: $BASH_COMMAND exited $?"' ERR

# Background jobs and wait, with their exit statuses.
sleep 0.2 &
a=$!
(exit 3) &
b=$!
wait "$a" || fail "wait for sleep"
st=0; wait "$b" || st=$?
[[ $st -eq 3 ]] || fail "wait status $st, want 3"
for i in 1 2 3 4; do (sleep "0.0$i"; echo "job $i") & done
wait
{ sleep 0.05; exit 5; } &
quick=$!
sleep 30 &
slow=$!
st=0; wait -n -p which "$quick" "$slow" || st=$?
[[ $st -eq 5 && $which -eq $quick ]] || fail "wait -n: status $st of $which, want 5 of $quick"
kill "$slow"
wait "$slow" || true

# Job control: with -m every job is its own process group (setpgid), and
# jobs/kill %N/wait %N work without a terminal.
set -m
sleep 30 &
pid=$!
[[ $(jobs -l) == *"$pid"* ]] || fail "jobs -l does not list $pid: $(jobs -l)"
pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
[[ $pgid -eq $pid ]] || fail "job pgid $pgid, want $pid (its own group)"
[[ $(ps -o sid= -p "$pid" | tr -d ' ') -eq $(ps -o sid= -p $$ | tr -d ' ') ]] || fail "job left the session"
# stopped: T (t under a tracer); the state changes asynchronously
state() { ps -o stat= -p "$pid"; }
# %% (the current job), not %1: bash numbers a new job after the highest
# one still in its table, and an earlier job's entry may linger there.
kill -STOP %%
for _ in $(seq 100); do [[ $(state) == [Tt]* ]] && break; sleep 0.05; done
[[ $(state) == [Tt]* ]] || fail "job not stopped: $(state)"
kill -CONT %%
kill -TERM %%
st=0; wait "$pid" || st=$?
[[ $st -eq 143 ]] || fail "killed job status $st, want 143"
set +m

# Traps: a signal to ourselves, and EXIT in a subshell.
got=
trap 'got=usr1' USR1
kill -USR1 $$
[[ $got == usr1 ]] || fail "USR1 trap did not run"
trap - USR1
out=$(bash -c 'trap "echo bye" EXIT; echo hi')
[[ $out == $'hi\nbye' ]] || fail "EXIT trap: $out"

# Pipelines, process substitution, here-strings, a coprocess.
n=$(seq 1 100 | grep -c 5)
[[ $n -eq 19 ]] || fail "pipeline counted $n"
diff <(printf 'a\nb\n') <(printf 'a\nb\n') >/dev/null || fail "process substitution"
coproc CAT { cat; }
echo ping >&"${CAT[1]}"
read -r -t 5 reply <&"${CAT[0]}" || fail "coproc read"
[[ $reply == ping ]] || fail "coproc replied $reply"
eval "exec ${CAT[1]}>&-"
# The coprocess may already have been reaped by the time we wait for it
# (bash reports "not a child" then): that is not a failure.
wait "$CAT_PID" 2>/dev/null || true
# read -t times out on a pipe with no writer yet (select/pselect6).
st=0; { sleep 1; } | { read -r -t 0.1 _ || st=$?; echo "$st" > "$HOME/readst"; }
[[ $(cat "$HOME/readst") -gt 128 ]] || fail "read -t did not time out: $(cat "$HOME/readst")"
ulimit -n >/dev/null
times >/dev/null
echo "bash: OK"
