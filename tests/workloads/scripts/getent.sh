#!/bin/sh
# getent workload: name resolution through glibc's NSS (/etc/hosts).
# Prints "getent: OK".
set -eu
out=$(getent hosts localhost)
echo "getent: $out"
case $out in
127.0.0.1*localhost* | ::1*localhost*) ;;
*) echo "getent: FAIL: unexpected answer"; exit 1 ;;
esac
# (not ahostsv4: its AI_ADDRCONFIG ignores loopback addresses, so in a
# loopback-only network namespace glibc answers it only when it cannot ask
# rtnetlink which families are configured)
getent ahosts localhost | grep -q '^127\.0\.0\.1 ' || { echo "getent: FAIL: ahosts"; exit 1; }
getent passwd root >/dev/null || { echo "getent: FAIL: passwd root"; exit 1; }
echo "getent: OK"
