#!/bin/sh
# CTest guestmem_snap_exit_status: guestmem-snap's exit status per error,
# on a valid seed snapshot and damaged copies of it.
#   test_guestmem_snap.sh TOOL SEED WORKDIR
set -u
t=$1 s=$2 w=$3
rm -rf "$w" && mkdir -p "$w" || exit 1
n=$(wc -c < "$s")
expect() {
  want=$1; shift
  "$t" "$@" > "$w/out" 2>&1; got=$?
  if [ "$got" -ne "$want" ]; then echo "guestmem-snap $* -> $got, expected $want"; cat "$w/out"; exit 1; fi
}
expect 0 check "$s"
expect 0 show "$s"
grep -q '^runs: ' "$w/out" || { echo "show printed no runs line"; exit 1; }
expect 0 show -a "$s"
expect 1 check
expect 1 frob "$s"
expect 2 check "$w/missing"
{ printf 'XMSN'; tail -c +5 "$s"; } > "$w/magic"; expect 3 check "$w/magic"
{ head -c 4 "$s"; printf '\011'; tail -c +6 "$s"; } > "$w/version"; expect 4 check "$w/version"
head -c $((n - 1)) "$s" > "$w/short"; expect 5 check "$w/short"
{ cat "$s"; printf 'x'; } > "$w/long"; expect 6 check "$w/long"
{ head -c 40 "$s"; printf '\377'; tail -c +42 "$s"; } > "$w/flip"; expect 7 show "$w/flip"
grep -q '^runs: ' "$w/out" && { echo "show listed a snapshot that failed its checksum"; exit 1; }
grep -q 'offset' "$w/out" || { echo "the checksum error names no offset"; exit 1; }
echo "guestmem-snap: every exit status as documented"
