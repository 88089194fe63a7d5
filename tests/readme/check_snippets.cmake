# Extracts every ```cpp / ```c++ / ```c block of a Markdown file and
# builds each one on its own with -Wall -Wextra -Werror (C++20; C99 with
# -pedantic for ```c), so a snippet that does not compile as printed fails.
#
#   cmake -DMARKDOWN=README.md -DWORK_DIR=dir -DCXX=g++ -DCC=gcc
#         -DINCLUDES="inc1;inc2" [-DC_LIBRARY=libguestmem_c.so] [-DRUSTC=rustc]
#         -P check_snippets.cmake
#
# Info strings (the text after the opening fence):
#   cpp, c++, c        a complete translation unit: compiled (-c); a C++
#                      program (one with `int main(`) is linked too, a C
#                      program too when C_LIBRARY (libguestmem_c) is given
#   cpp fragment       deliberately not a whole translation unit: listed,
#                      not built. Keep these rare; prefer a complete snippet.
#   rust               skipped (the Rust quick start is built elsewhere)
#                      unless the info string says `rust check`, which
#                      type-checks it with rustc (-D warnings; a program if it
#                      has fn main, else a library) when RUSTC is given.
#   anything else      (sh, cmake, text...) not code: ignored.
cmake_minimum_required(VERSION 3.25)
foreach(v MARKDOWN WORK_DIR CXX)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_snippets.cmake: -D${v}=... is required")
  endif()
endforeach()

file(READ ${MARKDOWN} text)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

set(include_flags "")
foreach(dir IN LISTS INCLUDES)
  list(APPEND include_flags "-I${dir}")
endforeach()

set(in_block OFF)
set(lineno 0)
set(built 0)
set(fragments 0)
set(failed "")
# Line by line with string(FIND): a CMake list would mangle `;` and `[`.
string(APPEND text "\n")
while(NOT text STREQUAL "")
  string(FIND "${text}" "\n" eol)
  string(SUBSTRING "${text}" 0 ${eol} line)
  math(EXPR next "${eol} + 1")
  string(SUBSTRING "${text}" ${next} -1 text)
  math(EXPR lineno "${lineno} + 1")
  if(NOT in_block)
    if(line MATCHES "^([ ]*)```[ ]*([A-Za-z+]*)[ ]*(.*)$")
      string(LENGTH "${CMAKE_MATCH_1}" indent_len)
      set(lang "${CMAKE_MATCH_2}")
      set(extra "${CMAKE_MATCH_3}")
      set(in_block ON)
      set(start ${lineno})
      set(body "")
    endif()
    continue()
  endif()
  if(line MATCHES "^[ ]*```[ ]*$")
    set(in_block OFF)
    set(kind "")
    if(lang STREQUAL "cpp" OR lang STREQUAL "c++")
      set(kind cxx)
    elseif(lang STREQUAL "c")
      set(kind c)
    elseif(lang STREQUAL "rust" AND extra MATCHES "check")
      set(kind rust)
    endif()
    if(kind STREQUAL "")
      continue()
    endif()
    if(extra MATCHES "fragment")
      message(STATUS "${MARKDOWN}:${start}: ```${lang} ${extra}: a marked fragment, not built")
      math(EXPR fragments "${fragments} + 1")
      continue()
    endif()
    set(stem "${WORK_DIR}/line_${start}")
    if(kind STREQUAL "cxx")
      set(src "${stem}.cpp")
      set(cmd ${CXX} -std=c++20 -Wall -Wextra -Werror ${include_flags})
    elseif(kind STREQUAL "c")
      if(NOT CC)
        message(STATUS "${MARKDOWN}:${start}: ```c: no C compiler given (GUESTMEM_BUILD_C off), not built")
        continue()
      endif()
      set(src "${stem}.c")
      set(cmd ${CC} -std=c99 -Wall -Wextra -Werror -pedantic ${include_flags})
    else()
      if(NOT RUSTC)
        message(STATUS "${MARKDOWN}:${start}: ```rust check: rustc not found, not built")
        continue()
      endif()
      set(src "${stem}.rs")
      set(crate lib)
      if(body MATCHES "fn main[ ]*\\(")
        set(crate bin)
      endif()
      # Type-checked, not linked: no libguestmem_c needed.
      set(cmd ${RUSTC} --edition 2021 -D warnings --crate-type ${crate} --emit=metadata --out-dir ${WORK_DIR})
    endif()
    file(WRITE ${src} "${body}")
    if(kind STREQUAL "rust")
      list(APPEND cmd ${src})
    elseif(kind STREQUAL "cxx" AND body MATCHES "(^|\n)int[ ]+main[ ]*\\(")
      list(APPEND cmd ${src} -o ${stem} -pthread)         # header-only: a program links as it is
    elseif(kind STREQUAL "c" AND C_LIBRARY AND body MATCHES "(^|\n)int[ ]+main[ ]*\\(")
      list(APPEND cmd ${src} -o ${stem} ${C_LIBRARY})    # a C program links with libguestmem_c
    else()
      list(APPEND cmd -c ${src} -o ${stem}.o)
    endif()
    execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    math(EXPR built "${built} + 1")
    if(NOT rc EQUAL 0)
      message("${MARKDOWN}:${start}: the ```${lang} block starting here does not build as printed "
              "(${src}):\n${out}")
      list(APPEND failed "${start}")
    else()
      message(STATUS "${MARKDOWN}:${start}: ```${lang} builds")
    endif()
    continue()
  endif()
  # Drop the fence's own indentation (a block inside a list item).
  if(indent_len GREATER 0)
    string(REGEX REPLACE "^[ ]{0,${indent_len}}" "" line "${line}")
  endif()
  string(APPEND body "${line}\n")
endwhile()
if(in_block)
  message(FATAL_ERROR "${MARKDOWN}:${start}: a code block is never closed")
endif()
list(LENGTH failed nfailed)
message(STATUS "${MARKDOWN}: ${built} snippets built, ${nfailed} failed, ${fragments} marked fragments")
if(nfailed GREATER 0)
  message(FATAL_ERROR "${MARKDOWN}: snippets that do not build, by line: ${failed}")
endif()
if(built EQUAL 0)
  message(FATAL_ERROR "${MARKDOWN}: no C or C++ snippet found; is the extractor broken?")
endif()
