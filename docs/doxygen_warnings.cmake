# docs/doxygen_warnings.cmake — read Doxygen's warning log and say what it holds,
# grouped by file. Run by CMake (cmake -P), two modes:
#
#   MODE=report  print the summary; never fails (the `docs` target runs this)
#   MODE=check   build the `docs` target in BUILD_DIR first, print the summary,
#                and fail on any warning (headers, README and the
#                Markdown pages alike: a broken link is a warning). With no DOXYGEN it
#                prints GUESTMEM_DOCS_SKIPPED (CTest then reports a skip).
#
# Variables: MODE, LOG (the warning log), SOURCE_DIR (project root),
# BUILD_DIR and DOXYGEN (check only).

if(NOT MODE STREQUAL "report" AND NOT MODE STREQUAL "check")
  message(FATAL_ERROR "doxygen_warnings.cmake: MODE must be report or check, not '${MODE}'")
endif()

if(MODE STREQUAL "check")
  if(NOT DOXYGEN)
    message("GUESTMEM_DOCS_SKIPPED: doxygen is not installed (or was not found when the build directory was "
            "configured): install it with cmake/install-deps and re-run cmake to check the API reference.")
    return()
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target docs RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "docs check: building the docs target failed (${rc})")
  endif()
endif()

if(NOT EXISTS "${LOG}")
  message(FATAL_ERROR "docs: no warning log at ${LOG} (did doxygen run?)")
endif()

file(READ "${LOG}" text)
# One list element per line (semicolons would split a line in two).
string(REPLACE ";" "," text "${text}")
string(REPLACE "\n" ";" lines "${text}")

set(files "")
set(total 0)
set(public_total 0)
foreach(line IN LISTS lines)
  # Continuation lines (indented, or without "warning:") belong to the warning above.
  if(line MATCHES "^(.*):([0-9]+): warning: ")
    set(path "${CMAKE_MATCH_1}")
  elseif(line MATCHES "^warning: ")
    set(path "(no file)")
  else()
    continue()
  endif()
  string(REPLACE "${SOURCE_DIR}/" "" path "${path}")
  string(MAKE_C_IDENTIFIER "${path}" key)
  if(NOT DEFINED count_${key})
    list(APPEND files "${path}")
    set(count_${key} 0)
    set(undoc_${key} 0)
  endif()
  math(EXPR count_${key} "${count_${key}} + 1")
  if(line MATCHES "is not documented")
    math(EXPR undoc_${key} "${undoc_${key}} + 1")
  endif()
  math(EXPR total "${total} + 1")
  if(path MATCHES "^include/guestmem/" AND NOT path MATCHES "/detail/")
    math(EXPR public_total "${public_total} + 1")
  endif()
endforeach()

list(SORT files)
set(report "")
foreach(path IN LISTS files)
  string(MAKE_C_IDENTIFIER "${path}" key)
  set(kind "")
  if(path MATCHES "^include/guestmem/" AND NOT path MATCHES "/detail/")
    set(kind " [public header]")
  endif()
  string(APPEND report "  ${count_${key}}\t(${undoc_${key}} undocumented)\t${path}${kind}\n")
endforeach()
message("doxygen: ${total} warnings, ${public_total} about public headers (log: ${LOG})\n${report}")

if(MODE STREQUAL "check" AND total GREATER 0)
  message(FATAL_ERROR "docs check: ${total} Doxygen warnings (${public_total} about public headers); see ${LOG}")
endif()
