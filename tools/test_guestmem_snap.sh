#!/bin/sh
# CTest guestmem_snap_exit_status: guestmem-snap's command-line conventions
# (--help on stdout with exit 0, --version, - for standard input, usage
# errors) and its exit status per error, on a valid seed snapshot and
# damaged copies of it; and the man page made from --help.
#   test_guestmem_snap.sh TOOL SEED WORKDIR MANPAGE.gz
set -u
t=$1 s=$2 w=$3 man=$4
rm -rf "$w" && mkdir -p "$w" || exit 1
n=$(wc -c < "$s")
fail() { echo "$*"; cat "$w/out" "$w/err" 2>/dev/null; exit 1; }
expect() {
  want=$1; shift
  "$t" "$@" > "$w/out" 2> "$w/err"; got=$?
  [ "$got" -eq "$want" ] || fail "guestmem-snap $* -> $got, expected $want"
}
expect_stdin() {
  want=$1 file=$2; shift 2
  "$t" "$@" < "$file" > "$w/out" 2> "$w/err"; got=$?
  [ "$got" -eq "$want" ] || fail "guestmem-snap $* < $file -> $got, expected $want"
}

# Conventions: help and version on stdout, exit 0; usage errors exit 1 on stderr.
expect 0 --help
grep -q '^Exit status:' "$w/out" || fail "--help does not document the exit status"
grep -q 'check' "$w/out" || fail "--help does not list the commands"
[ -s "$w/err" ] && fail "--help wrote to stderr"
expect 0 check --help
grep -q 'FILE' "$w/out" || fail "check --help does not name FILE"
expect 0 --version
grep -Eq '^guestmem-snap [0-9]+\.[0-9]+\.[0-9]+$' "$w/out" || fail "--version printed '$(cat "$w/out")'"
expect 1
expect 1 check
expect 1 frob "$s"
expect 1 check "$s" extra
expect 1 show --bogus "$s"
[ -s "$w/err" ] || fail "a usage error printed nothing on stderr"

# A valid snapshot, from a file and from standard input.
expect 0 check "$s"
grep -q 'valid full snapshot' "$w/out" || fail "check printed no verdict"
expect 0 show "$s"
grep -q '^runs: ' "$w/out" || fail "show printed no runs line"
expect 0 show -a "$s"
expect_stdin 0 "$s" check -
grep -q '^-: valid' "$w/out" || fail "check - did not read standard input"
expect_stdin 0 "$s" show -

# Each kind of damage and its exit status.
expect 2 check "$w/missing"
: > "$w/empty"; expect 3 check "$w/empty"
{ printf 'XMSN'; tail -c +5 "$s"; } > "$w/magic"; expect 3 check "$w/magic"
expect_stdin 3 "$w/magic" check -
{ head -c 4 "$s"; printf '\011'; tail -c +6 "$s"; } > "$w/version"; expect 4 check "$w/version"
head -c $((n - 1)) "$s" > "$w/short"; expect 5 check "$w/short"
{ cat "$s"; printf 'x'; } > "$w/long"; expect 5 check "$w/long"
{ head -c 40 "$s"; printf '\377'; tail -c +42 "$s"; } > "$w/flip"; expect 5 show "$w/flip"
grep -q '^runs: ' "$w/out" && fail "show listed a snapshot that failed its checksum"
grep -q 'offset' "$w/err" || fail "the checksum error names no offset"

# The man page is the help text.
gzip -dc "$man" > "$w/man" || fail "no man page at $man"
grep -q '^\.TH GUESTMEM-SNAP 1' "$w/man" || fail "the man page has no .TH line"
grep -q '^Exit status:' "$w/man" || fail "the man page lacks the exit status table"
echo "guestmem-snap: help, version, stdin, usage errors, every exit status and the man page as documented"
