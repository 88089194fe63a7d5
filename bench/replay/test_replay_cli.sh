#!/bin/sh
# CTest replay_follows_the_cli_conventions_and_escapes_its_json:
# guestmem-replay's --help (stdout, exit 0, documents the exit status),
# --version, usage errors (exit 2), and --json output that a JSON parser
# reads back, with a trace path holding a quote and a backslash.
#   test_replay_cli.sh TOOL WORKDIR
set -u
t=$1 w=$2
rm -rf "$w" && mkdir -p "$w" && cd "$w" || exit 1
fail() { echo "$*"; cat out err 2>/dev/null; exit 1; }
expect() {
  want=$1; shift
  "$t" "$@" > out 2> err; got=$?
  [ "$got" -eq "$want" ] || fail "guestmem-replay $* -> $got, expected $want"
}
expect 0 --help
grep -q '^Exit status:' out || fail "--help does not document the exit status"
[ -s err ] && fail "--help wrote to stderr"
expect 0 --version
grep -Eq '^guestmem-replay [0-9]+\.[0-9]+\.[0-9]+$' out || fail "--version printed '$(cat out)'"
expect 2
expect 2 --bogus
expect 2 --generate no_such x.trace
grep -q 'no generator no_such' err || fail "an unknown generator was not named"
expect 2 --generate dma_churn
name=$(printf 'we"ird\\name.trace')
expect 0 --generate dma_churn "$name"
expect 0 "$name" --json
command -v python3 > /dev/null || { echo "python3 not found: the JSON is not parsed back"; exit 0; }
python3 -c '
import json, sys
d = json.load(open("out"))
assert d["trace"] == sys.argv[1], d["trace"]
assert [r["name"] for r in d["results"]] == ["guestmem", "xarray (KVM)", "bitmap (QEMU)"], d["results"]
assert d["records"] > 0 and d["pages"] > 0
' "$name" || fail "--json is not the JSON expected"
echo "guestmem-replay: help, version, usage errors and escaped JSON as documented"
