# Part boundaries of the header tree (docs/DESIGN.md §Parts): fails when a
# header of one part folder of include/guestmem/ (folio/, memory/, ...)
#   - declares a friend that names a type defined in another part folder, or
#   - includes another part's detail/ header.
# Function friends (operators) are not types and are skipped; a friend
# naming a type defined nowhere in the tree (a template parameter) passes.
#
# Usage: cmake -DROOT=<dir holding guestmem/> -P check_part_boundaries.cmake
# Cost: O(header bytes); run as a CTest test (part_boundaries).
cmake_minimum_required(VERSION 3.20)
if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<include dir> -P check_part_boundaries.cmake")
endif()
get_filename_component(ROOT "${ROOT}" ABSOLUTE)
file(GLOB_RECURSE headers RELATIVE ${ROOT}/guestmem ${ROOT}/guestmem/*.hpp)

function(part_of rel out)
  if(rel MATCHES "^([^/]+)/")
    set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
  else()
    set(${out} "<top>" PARENT_SCOPE)
  endif()
endfunction()

# Pass 1: the part folders that define each class, struct, union or enum.
foreach(h IN LISTS headers)
  part_of(${h} part)
  file(READ ${ROOT}/guestmem/${h} text)
  string(REPLACE ";" " " text "${text}")
  string(REGEX MATCHALL "(class|struct|union)[ \t\r\n]+[A-Za-z_][A-Za-z0-9_]*[ \t\r\n]*(<[^{}<>]*>)?[ \t\r\n]*(final[ \t\r\n]*)?[:{]"
         defs "${text}")
  foreach(d IN LISTS defs)
    string(REGEX REPLACE "^(class|struct|union)[ \t\r\n]+([A-Za-z_][A-Za-z0-9_]*).*" "\\2" name "${d}")
    list(APPEND defined_in_${name} ${part})
  endforeach()
endforeach()

# Pass 2: friends and detail/ includes.
set(failures 0)
foreach(h IN LISTS headers)
  part_of(${h} part)
  file(STRINGS ${ROOT}/guestmem/${h} lines REGEX "(^|[^A-Za-z0-9_])friend[ \t]|#[ \t]*include[ \t]*<guestmem/")
  foreach(line IN LISTS lines)
    if(line MATCHES "^[ \t]*//")
      continue()
    endif()
    if(line MATCHES "#[ \t]*include[ \t]*<guestmem/([^/>]+)/detail/")
      if(NOT CMAKE_MATCH_1 STREQUAL part)
        message(SEND_ERROR "include/guestmem/${h}: includes ${CMAKE_MATCH_1}/detail/ from part ${part}/: "
                           "another part's detail/ is not to be read (give ${CMAKE_MATCH_1}/ a public call instead)")
        math(EXPR failures "${failures} + 1")
      endif()
      continue()
    endif()
    if(NOT line MATCHES "(^|[^A-Za-z0-9_])friend[ \t]+(.*)$")
      continue()
    endif()
    set(decl "${CMAKE_MATCH_2}")
    string(REGEX REPLACE "//.*$" "" decl "${decl}")
    string(REGEX REPLACE "[{;].*$" "" decl "${decl}")
    if(decl MATCHES "[(]")  # a function or operator, not a type
      continue()
    endif()
    while(decl MATCHES "<[^<>]*>")
      string(REGEX REPLACE "<[^<>]*>" "" decl "${decl}")
    endwhile()
    if(NOT decl MATCHES "([A-Za-z_][A-Za-z0-9_]*)[ \t]*$")
      continue()
    endif()
    set(name ${CMAKE_MATCH_1})
    if(NOT DEFINED defined_in_${name})
      continue()
    endif()
    list(REMOVE_DUPLICATES defined_in_${name})
    if(NOT part IN_LIST defined_in_${name})
      string(REPLACE ";" ", " where "${defined_in_${name}}")
      message(SEND_ERROR "include/guestmem/${h}: friend ${name} crosses a part boundary: it is defined in ${where}/, "
                         "this header is in ${part}/ (give that part a public loader or view instead)")
      math(EXPR failures "${failures} + 1")
    endif()
  endforeach()
endforeach()
list(LENGTH headers n)
if(failures EQUAL 0)
  message(STATUS "part boundaries: ${n} headers, no friend or detail/ include crosses a part")
endif()
