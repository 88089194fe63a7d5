# CPack: the Debian package guestmem-dev (headers, CMake config, pkg-config
# file, README and LICENSE), architecture-independent because the library is
# header-only; guestmem-tools (guestmem-snap, which prints and checks
# snapshots) and libguestmem-c-dev (the C ABI's libraries), built for this
# machine's architecture. One .deb per install component (`dev`, `tools`,
# `c`). Build it with `cpack -G DEB` in a build directory or the
# `package` target; tests/consumers/deb_package.cmake installs it into a
# scratch root and builds a consumer against it.
set(GUESTMEM_PACKAGE_CONTACT "guestmem maintainers <maintainers@users.noreply.h-seed-80a366b7.example>"
    CACHE STRING "Maintainer of the guestmem-dev package (Name <email>)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME guestmem-dev)
set(CPACK_PACKAGE_VENDOR guestmem)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "${GUESTMEM_PACKAGE_CONTACT}")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL dev)
if(GUESTMEM_BUILD_TOOLS)
  list(APPEND CPACK_COMPONENTS_ALL tools)
endif()
set(CPACK_DEBIAN_DEV_PACKAGE_NAME guestmem-dev)
set(CPACK_DEBIAN_DEV_FILE_NAME DEB-DEFAULT)  # guestmem-dev_<version>_all.deb
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME guestmem-tools)
set(CPACK_DEBIAN_TOOLS_FILE_NAME DEB-DEFAULT)  # guestmem-tools_<version>_<arch>.deb
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "libc6, libstdc++6")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "guestmem-snap prints guestmem ownership snapshots and checks them.")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${GUESTMEM_PACKAGE_CONTACT}")
# The control file's synopsis is the summary above; this is the extended description.
set(CPACK_PACKAGE_DESCRIPTION "guestmem tracks the shareability of a virtual machine's memory (shared
with the host or private to the guest) as coalesced ranges and the folios
behind it, and tells every consumer that maps the memory to let go in two
phases, so a conversion either happens completely or changes nothing.")
# What a consumer's compiler needs: Boost.Outcome and Boost.Intrusive (headers).
# The headers use no range-v3 (only guestmem's own tests do), so it is not a dependency.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libboost-dev (>= 1.74)")

# With the C ABI built (GUESTMEM_BUILD_C), cpack makes a second package from
# install component `c`: libguestmem-c-dev, for this architecture, holding
# libguestmem_c.so.0 (and its symlinks), libguestmem_c.a, guestmem-c.pc and
# guestmemCTargets.cmake; the header comes with guestmem-dev, which it depends
# on. guestmem-dev itself stays architecture-independent.
if(GUESTMEM_BUILD_C)
  list(APPEND CPACK_COMPONENTS_ALL c)
  set(CPACK_DEBIAN_C_PACKAGE_NAME libguestmem-c-dev)
  set(CPACK_DEBIAN_C_FILE_NAME DEB-DEFAULT)
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE GUESTMEM_DEB_ARCH
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT GUESTMEM_DEB_ARCH)
    set(GUESTMEM_DEB_ARCH amd64)
  endif()
  set(CPACK_DEBIAN_C_PACKAGE_ARCHITECTURE ${GUESTMEM_DEB_ARCH})
  set(CPACK_DEBIAN_C_PACKAGE_DEPENDS "guestmem-dev (= ${PROJECT_VERSION}), libc6, libstdc++6")
  set(CPACK_COMPONENT_C_DESCRIPTION "libguestmem_c: the C ABI of guestmem, for VMMs written in C or Rust.
A shared (libguestmem_c.so.0) and a static library with pkg-config and CMake
files; the header guestmem/c/guestmem.h comes with guestmem-dev.")
endif()

include(CPack)
