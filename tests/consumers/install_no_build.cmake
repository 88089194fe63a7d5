# tests/consumers/install_no_build.cmake (CTest package_install_without_build):
# what a packager of a header-only library does, a plain configure and an
# install with nothing built, must install the header-only library and
# nothing that needs a build (no libguestmem_c, no guestmem-snap, no CMake
# or pkg-config files for them); the installed-consumer project then builds
# against it. The package's version file accepts 0.<minor> of this release
# and refuses the next minor version (0.x: SameMinorVersion).
# cmake -DSOURCE_DIR= -DWORK_DIR= -DCONSUMERS_DIR= -DCXX= -DCC= -DGENERATOR= -DCTEST= -DVERSION=
#       -DLIBDIR= -DDATADIR= -DINCLUDEDIR= -P install_no_build.cmake
cmake_minimum_required(VERSION 3.25)
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(build ${WORK_DIR}/build)
set(prefix ${WORK_DIR}/prefix)
set(compilers -DCMAKE_CXX_COMPILER=${CXX})
if(CC)
  list(APPEND compilers -DCMAKE_C_COMPILER=${CC})
endif()
run("plain configure" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${build} -G ${GENERATOR} ${compilers})
run("cmake --install with nothing built" ${CMAKE_COMMAND} --install ${build} --prefix ${prefix})
message(STATUS "${out}")
foreach(f ${INCLUDEDIR}/guestmem/guestmem.hpp ${INCLUDEDIR}/guestmem/core/version.hpp ${INCLUDEDIR}/guestmem/c/guestmem.h
          ${DATADIR}/cmake/guestmem/guestmemConfig.cmake ${DATADIR}/cmake/guestmem/guestmemConfigVersion.cmake
          ${DATADIR}/pkgconfig/guestmem.pc)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "the header-only install lacks ${f}")
  endif()
endforeach()
file(GLOB_RECURSE built RELATIVE ${prefix} ${prefix}/*guestmem_c* ${prefix}/*guestmem-c* ${prefix}/bin/* ${prefix}/*/man1/*)
list(FILTER built EXCLUDE REGEX "^${INCLUDEDIR}/")
if(built)
  message(FATAL_ERROR "the header-only install holds files of targets that were not built: ${built}")
endif()

run("the find_package consumer of the header-only install"
    ${CTEST} --build-and-test ${CONSUMERS_DIR}/installed ${WORK_DIR}/consumer-build
    --build-generator ${GENERATOR}
    --build-options -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX}
                    -DEXPECTED_PC=${prefix}/${DATADIR}/pkgconfig/guestmem.pc
    --test-command ${CTEST} --output-on-failure)

# Version compatibility: this major.minor (any patch) is found; the next minor is not.
string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" mm "${VERSION}")
math(EXPR next_minor "${CMAKE_MATCH_2} + 1")
foreach(case "${CMAKE_MATCH_1}.${CMAKE_MATCH_2};TRUE" "${CMAKE_MATCH_1}.${next_minor};FALSE")
  list(GET case 0 want)
  list(GET case 1 expect)
  set(dir ${WORK_DIR}/version-${want})
  file(WRITE ${dir}/CMakeLists.txt "cmake_minimum_required(VERSION 3.25)
project(v LANGUAGES CXX)
find_package(guestmem ${want} CONFIG QUIET PATHS ${prefix} NO_DEFAULT_PATH)
file(WRITE \${CMAKE_BINARY_DIR}/found \"\${guestmem_FOUND}\")\n")
  run("configure asking for guestmem ${want}" ${CMAKE_COMMAND} -S ${dir} -B ${dir}/b -DCMAKE_CXX_COMPILER=${CXX})
  file(READ ${dir}/b/found found)
  if((expect AND NOT found) OR (NOT expect AND found))
    message(FATAL_ERROR "find_package(guestmem ${want}) against ${VERSION}: found '${found}', expected ${expect}")
  endif()
endforeach()
message(STATUS "a plain configure + install with nothing built installs the header-only library; consumers build; "
               "${CMAKE_MATCH_1}.${CMAKE_MATCH_2} is found and ${CMAKE_MATCH_1}.${next_minor} is not")
