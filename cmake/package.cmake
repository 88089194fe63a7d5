# CPack: Debian packages, one per install component, that lintian accepts
# (tests/consumers/lintian.cmake runs it on them):
#   guestmem-dev       (all)    component dev: the headers (C++ and C), the
#                               CMake package guestmem, guestmem.pc;
#   libguestmem-c0     (<arch>) component c: libguestmem_c.so.0, the C ABI's
#                               runtime, with shlibs and the ldconfig trigger;
#   libguestmem-c-dev  (<arch>) component cdev: the libguestmem_c.so link,
#                               libguestmem_c.a, guestmem-c.pc,
#                               guestmem-c-static.pc, the CMake package
#                               guestmem_c (under the multiarch libdir);
#   guestmem-tools     (<arch>) component tools: guestmem-snap and its man page.
# The C packages come when libguestmem_c is a target (GUESTMEM_BUILD_C), the
# tools when guestmem-snap is (GUESTMEM_BUILD_TOOLS and CLI11 found); this
# file is included after both. Binaries are stripped (debug info dropped); each
# package gets /usr/share/doc/<package>/copyright (cmake/debian/copyright) and
# changelog.gz (from the newest CHANGELOG.md entry). The .debs and CPack's
# scratch go to <build>/packages, whatever the working directory:
#   cpack --config build/default/CPackConfig.cmake    (or the `package` target)
# tests/consumers/deb_package.cmake unpacks them into a scratch root and
# builds consumers against them.
set(GUESTMEM_PACKAGE_CONTACT "guestmem maintainers <maintainers@users.noreply.h-seed-80a366b7.example>"
    CACHE STRING "Maintainer of the guestmem packages (Name <email>)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME guestmem)
set(CPACK_PACKAGE_VENDOR guestmem)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${GUESTMEM_PACKAGE_CONTACT}")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${GUESTMEM_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)  # only libguestmem-c0 has a shared object
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEB_COMPONENT_INSTALL ON)
execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE GUESTMEM_DEB_ARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT GUESTMEM_DEB_ARCH)
  set(GUESTMEM_DEB_ARCH amd64)
endif()

# Each package's synopsis (first line) and extended description. CPack takes
# the summary from CPACK_DEBIAN_<COMPONENT>_DESCRIPTION's first line when
# CPACK_PACKAGE_DESCRIPTION_SUMMARY is left at its default (unset here).
set(about "guestmem tracks the shareability of a virtual machine's memory (shared
with the host or private to the guest) as coalesced ranges and the folios
behind it, and tells every consumer that maps the memory to let go in two
phases, so a conversion either happens completely or changes nothing.")

# ---- guestmem-dev ----------------------------------------------------------
set(CPACK_COMPONENTS_ALL dev)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME guestmem-dev)
set(CPACK_DEBIAN_DEV_FILE_NAME DEB-DEFAULT)  # guestmem-dev_<version>_all.deb
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_MULTIARCH foreign)
# What a consumer's compiler needs: Boost.Outcome, Intrusive and CRC (headers).
# The headers use no range-v3 (only guestmem's own tests do), so it is not a dependency.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libboost-dev (>= 1.74)")
set(CPACK_DEBIAN_DEV_DESCRIPTION "header-only C++20 library tracking guest memory ownership
${about}
.
This package holds the C++20 headers (and the C ABI's header), the CMake
package guestmem (find_package(guestmem)) and guestmem.pc.")

# ---- guestmem-tools ----------------------------------------------------------
if(TARGET guestmem-snap)
  list(APPEND CPACK_COMPONENTS_ALL tools)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME guestmem-tools)
  set(CPACK_DEBIAN_TOOLS_FILE_NAME DEB-DEFAULT)  # guestmem-tools_<version>_<arch>.deb
  set(CPACK_DEBIAN_TOOLS_PACKAGE_ARCHITECTURE ${GUESTMEM_DEB_ARCH})
  set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_SHLIBDEPS ON)  # Depends from the libraries guestmem-snap links
  set(CPACK_DEBIAN_TOOLS_DESCRIPTION "print and check guestmem memory-ownership snapshots
${about}
.
This package holds guestmem-snap, which validates a snapshot completely
(header, CRC-32C checksum, every section) and lists it readably, with one
documented exit status per kind of damage.")
endif()

# ---- libguestmem-c0, libguestmem-c-dev ---------------------------------------
if(TARGET guestmem_c)
  list(APPEND CPACK_COMPONENTS_ALL c cdev)
  set(CPACK_DEBIAN_C_PACKAGE_NAME libguestmem-c0)
  set(CPACK_DEBIAN_C_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_C_PACKAGE_ARCHITECTURE ${GUESTMEM_DEB_ARCH})
  set(CPACK_DEBIAN_C_PACKAGE_SECTION libs)
  set(CPACK_DEBIAN_C_PACKAGE_MULTIARCH same)
  set(CPACK_DEBIAN_C_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_C_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/debian/triggers)
  set(CPACK_DEBIAN_C_DESCRIPTION "guest memory ownership tracking for hypervisors - C ABI runtime
${about}
.
This package holds libguestmem_c.so.0, the C ABI of guestmem, for VMMs
written in C or Rust.")

  set(CPACK_DEBIAN_CDEV_PACKAGE_NAME libguestmem-c-dev)
  set(CPACK_DEBIAN_CDEV_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_CDEV_PACKAGE_ARCHITECTURE ${GUESTMEM_DEB_ARCH})
  set(CPACK_DEBIAN_CDEV_PACKAGE_SECTION libdevel)
  set(CPACK_DEBIAN_CDEV_PACKAGE_MULTIARCH same)
  set(CPACK_DEBIAN_CDEV_PACKAGE_DEPENDS "libguestmem-c0 (= ${PROJECT_VERSION}), guestmem-dev (= ${PROJECT_VERSION})")
  set(CPACK_DEBIAN_CDEV_DESCRIPTION "guest memory ownership tracking for hypervisors - C ABI development files
${about}
.
This package holds what a C program links libguestmem_c with: the
libguestmem_c.so link, the static libguestmem_c.a, guestmem-c.pc,
guestmem-c-static.pc and the CMake package guestmem_c. The header
guestmem/c/guestmem.h comes with guestmem-dev.")
endif()

# ---- copyright and changelog.gz in every package ------------------------------
# Installed only when a component is asked for by name (EXCLUDE_FROM_ALL), as
# cpack does: a plain `cmake --install` does not get them.
file(STRINGS ${PROJECT_SOURCE_DIR}/CHANGELOG.md release REGEX "^## ${PROJECT_VERSION} - [0-9-]+$")
if(NOT release MATCHES "([0-9]+-[0-9]+-[0-9]+)$")
  message(FATAL_ERROR "CHANGELOG.md has no heading '## ${PROJECT_VERSION} - YYYY-MM-DD' for this version")
endif()
execute_process(COMMAND date -u -R -d "${CMAKE_MATCH_1} 12:00" OUTPUT_VARIABLE release_date
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
set(changelog ${PROJECT_BINARY_DIR}/debian/changelog)
file(WRITE ${changelog} "guestmem (${PROJECT_VERSION}) unstable; urgency=medium

  * Release ${PROJECT_VERSION}: see CHANGELOG.md in the guestmem sources.

 -- ${GUESTMEM_PACKAGE_CONTACT}  ${release_date}
")
find_program(GUESTMEM_GZIP gzip)
if(GUESTMEM_GZIP)
  execute_process(COMMAND ${GUESTMEM_GZIP} -9nf ${changelog})  # -n: no name or time stamp (reproducible)
endif()
if(TARGET guestmem_c)
  # The two ldconfig calls CPack adds beside the trigger (the file says why).
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/debian/libguestmem-c0.lintian-overrides
          DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME libguestmem-c0 COMPONENT c EXCLUDE_FROM_ALL)
endif()
foreach(component IN LISTS CPACK_COMPONENTS_ALL)
  string(TOUPPER ${component} c)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/debian/copyright ${changelog}.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${CPACK_DEBIAN_${c}_PACKAGE_NAME}
          COMPONENT ${component} EXCLUDE_FROM_ALL)
endforeach()

include(CPack)
