# docs/contract_fields.sed: Doxygen's input filter for the public headers
# (sed -E). A member's labelled contract fields (`Errors:`, `Lock:`,
# `Cost:`, `Allocates:` at the start of a `///` line, docs/contracts.cmake)
# become \contract_field{...}, a Doxyfile alias for a titled paragraph, so
# the reference shows each field under its own heading instead of running
# them into one paragraph (or into the last item of an Errors list). A
# `Cost:` after `Lock:` on the same line (trivial members) gets one too.
# Lines are only rewritten, never added, so warnings keep their line numbers.
s#^([[:space:]]*///)[[:space:]]?(Errors|Lock|Cost|Allocates):#\1 \\contract_field{\2}#
s#^([[:space:]]*/// \\contract_field\{Lock\}.*[^[:alnum:]_])(Cost|Allocates):#\1\\contract_field{\2}#
