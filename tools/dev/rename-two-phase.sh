#!/usr/bin/env bash
# rename-two-phase.sh - move the tree onto one vocabulary for the two-phase
# protocol (prepare / commit / abort in every layer, docs/DESIGN.md "The
# two-phase protocol in every layer") and onto counter names that say what
# they count (issue #27, item 2).
#
#   tools/dev/rename-two-phase.sh          rewrite the files in place
#   tools/dev/rename-two-phase.sh --check  only list files that still use an
#                                          old name (exit 1 if any)
#
# Idempotent: every rule matches only an old spelling, never the new one, so
# it is safe to run again on a renamed tree, and after merging code written
# against the old names. It edits the C++ sources and headers (*.hpp, *.cpp)
# and the Markdown docs of the work tree (tracked and untracked, .gitignore'd
# files excluded). It leaves alone: the C ABI (*.c, *.h: guestmem_stats keeps
# its field names, an API), the Rust crates (they use the C names), and
# CHANGELOG.md (history keeps the names it had).
#
# Old -> new
#   range_map      reserve_for / assign_reserved / release_reservation
#                  -> prepare_assign / commit_assign / abort_assign
#   folio_table    reserve(plan) / apply(plan, defer) / cancel(plan)
#                  -> prepare_conversion / commit_conversion / abort_conversion
#                  (internals: reserve_splits -> prepare_splits,
#                   apply_walk -> commit_walk, cancel_ops -> abort_ops;
#                   conversion_plan::reserved() -> prepared())
#   notifier_set   begin_round -> prepare_round (commit_round, abort_round stay)
#   folio_table::loader (bulk load)   cancel() -> abort() (commit stays)
#   folio allocator policy (the folio_allocator concept and every allocator)
#                  reserve_split / split(frame, from, to) / unreserve_split
#                  -> prepare_split / commit_split / abort_split
#                  (fault_point::reserve_split -> fault_point::prepare_split)
#   guest_memory_stats (and detail::memory_counters)
#                  busy -> busy_refusals, deferred -> deferred_folios,
#                  quarantined -> commit_quarantines
#
# The folio_table calls have generic names (reserve, apply, cancel are also
# std::vector's, the host view's ...), so they are renamed only on a
# receiver the tree uses for folio tables (folios_, folios, table, t, ft,
# tbl, owner_) with one plain argument; run --check and grep for
# '\.(reserve|apply|cancel)\(' after merging code that names its table
# otherwise. An allocator's split is renamed where it is called with three
# arguments (a folio node's split() takes none, the folio loader's two) and
# where it is defined with a frame_number first parameter.
set -euo pipefail

check=0
[[ ${1-} == --check ]] && check=1
root=$(git rev-parse --show-toplevel)
cd "$root"

mapfile -d '' cxx < <(git ls-files -z -co --exclude-standard -- '*.hpp' '*.cpp' ':!:rust/**')
mapfile -d '' md < <(git ls-files -z -co --exclude-standard -- '*.md' ':!:CHANGELOG.md' ':!:rust/**')

# Identifiers unique to the protocols: renamed everywhere, prose included.
common='
s/\breserve_for\b/prepare_assign/g;
s/\bassign_reserved\b/commit_assign/g;
s/\brelease_reservation\b/abort_assign/g;
s/\bbegin_round\b/prepare_round/g;
s/\breserve_splits\b/prepare_splits/g;
s/\bapply_walk\b/commit_walk/g;
s/\bcancel_ops\b/abort_ops/g;
s/\breserve_split\b/prepare_split/g;
s/\bunreserve_split\b/abort_split/g;
'

# C++ only: the folio_table members (by their plan& parameter, or a folio
# table receiver), conversion_plan::reserved(), the stats members.
recv='(?<![\w.>])(folios_|folios|table|t|ft|tbl|owner_)'
# Exactly three arguments (each may hold one level of parentheses): an
# allocator's split(frame, from, to); the folio loader's split(page, order)
# and a folio node's split() are left alone.
a1='(?:[^(),]|\([^()]*\))+'
arg3="$a1,$a1,$a1"
arg='(\*this|\w+)'
code='
s/\breserve\((\s*(?:typename\s+\w+::)?plan\s*&)/prepare_conversion($1/g;
s/\bapply\((\s*(?:typename\s+\w+::)?plan\s*&)/commit_conversion($1/g;
s/\bcancel\((\s*(?:typename\s+\w+::)?plan\s*&)/abort_conversion($1/g;
s/'"$recv"'(\.|->)reserve\(\s*'"$arg"'\s*\)/$1$2prepare_conversion($3)/g;
s/'"$recv"'(\.|->)apply\(\s*'"$arg"'\s*,/$1$2commit_conversion($3,/g;
s/'"$recv"'(\.|->)cancel\(\s*'"$arg"'\s*\)/$1$2abort_conversion($3)/g;
s/\bbool reserved\(\) const noexcept/bool prepared() const noexcept/g;
s/(?<![\w])cancel\(\)/abort()/g;
s/(?<=[\w)\]])(\.|->)split\((?='"$arg3"'\))/$1commit_split(/g;
s/\bvoid split\((\s*frame_number)/void commit_split($1/g;
s/(?<=[\w)\]])\.reserved\(\)/.prepared()/g;
s/(std::uint64_t\s+)busy(\s*=\s*0;)/$1busy_refusals$2/g;
s/(std::uint64_t\s+)deferred(\s*=\s*0;)/$1deferred_folios$2/g;
s/(std::uint64_t\s+)quarantined(\s*=\s*0;)/$1commit_quarantines$2/g;
s/(?<=[\w)\]])\.busy\b(?!\s*\()/.busy_refusals/g;
s/(?<=[\w)\]])\.deferred\b(?!\s*\()/.deferred_folios/g;
s/(?<=[\w)\]])\.quarantined\b(?!\s*\()/.commit_quarantines/g;
'
# detail::memory_counters copies its members by their bare names.
counters='s/\bbusy\b/busy_refusals/g; s/\bdeferred\b/deferred_folios/g; s/\bquarantined\b/commit_quarantines/g;'
# The test suite's reference model mirrors the counters in events_, but its
# page_state has a flag named quarantined (the page is quarantined now):
# only events_ and its declaration are renamed there.
model='s/\bbusy = 0\b/busy_refusals = 0/g; s/\bquarantined = 0;/commit_quarantines = 0;/g;
s/\bevents_\.busy\b/events_.busy_refusals/g; s/\bevents_\.deferred\b/events_.deferred_folios/g;
s/\bevents_\.quarantined\b/events_.commit_quarantines/g;'
model_file=tests/model/reference_model.hpp

old_cxx='\b(reserve_for|assign_reserved|release_reservation|begin_round|reserve_splits|apply_walk|cancel_ops|reserve_split|unreserve_split)\b|(?<=[\w)\]])(\.|->)split\('"$arg3"'\)|\bvoid split\(\s*frame_number|\b(reserve|apply|cancel)\(\s*(typename\s+\w+::)?plan\s*&|(?<![\w.>])(folios_|folios|table|t|ft|tbl|owner_)(\.|->)(reserve|cancel)\(\s*(\*this|\w+)\s*\)|(?<![\w.>])(folios_|folios|table|t|ft|tbl|owner_)(\.|->)apply\(\s*(\*this|\w+)\s*,|bool reserved\(\) const|(?<![\w])cancel\(\)|std::uint64_t\s+(busy|deferred|quarantined)\s*=|(?<=[\w)\]])\.(busy|deferred|quarantined|reserved\(\))(?![\w(])'
old_md='\b(reserve_for|assign_reserved|release_reservation|begin_round|reserve_splits|apply_walk|cancel_ops|reserve_split|unreserve_split)\b'

if ((check)); then
    left=0
    for f in "${cxx[@]}"; do
        [[ -f $f ]] || continue
        pat=$old_cxx
        [[ $f == "$model_file" ]] && pat="$old_md"'|\bevents_\.(busy|deferred|quarantined)\b|\b(busy|quarantined) = 0\b'
        if perl -ne 'BEGIN{$n=0} $n++ if /'"$pat"'/; END{exit($n?0:1)}' "$f"; then
            echo "$f"; left=1
        fi
    done
    for f in "${md[@]}"; do
        [[ -f $f ]] || continue
        if perl -ne 'BEGIN{$n=0} $n++ if /'"$old_md"'/; END{exit($n?0:1)}' "$f"; then
            echo "$f"; left=1
        fi
    done
    exit $left
fi

for f in "${cxx[@]}"; do
    [[ -f $f ]] || continue
    prog="$common$code"
    [[ $f == include/guestmem/memory/detail/counters.hpp ]] && prog="$prog$counters"
    [[ $f == "$model_file" ]] && prog="$common$model"
    perl -pi -e "$prog" "$f"
done
for f in "${md[@]}"; do
    [[ -f $f ]] || continue
    perl -pi -e "$common" "$f"
done
