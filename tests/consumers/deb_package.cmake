# The Debian package consumed the way its users do (CTest: package_deb).
# cpack builds guestmem-dev from the build directory, dpkg-deb unpacks it into
# a scratch root (nothing is installed on the machine), the control fields and
# files are checked, the installed-consumer project is configured and built
# against the root with find_package (range-v3 hidden: consumers must not need
# it), and consumer.cpp is compiled once more with the flags pkg-config reads
# from the unpacked guestmem.pc.
# With CC set (the build has the C ABI), the second package libguestmem-c-dev
# and libguestmem-c0 are checked too (the runtime holds only the .so.0, with
# shlibs and the ldconfig trigger): unpacked into the same root, then a
# C-only project finds them with find_package(guestmem COMPONENTS c) and C
# programs are built with pkg-config guestmem-c (and guestmem-c-static) alone.
# cmake -DBUILD_DIR= -DWORK_DIR= -DCONSUMERS_DIR= -DCXX= -DGENERATOR= -DCPACK= -DCTEST=
#       -DDPKG_DEB= -DPKG_CONFIG= -DVERSION= -DINCLUDEDIR= -DDATADIR= -DDOCDIR= [-DCC= -DLIBDIR=] -P deb_package.cmake
cmake_minimum_required(VERSION 3.25)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(root ${WORK_DIR}/root)

# ---- build the .deb ------------------------------------------------------
run("cpack" ${CPACK} -G DEB --config ${BUILD_DIR}/CPackConfig.cmake -B ${WORK_DIR}/out)
set(deb ${WORK_DIR}/out/guestmem-dev_${VERSION}_all.deb)
if(NOT EXISTS ${deb})
  file(GLOB made ${WORK_DIR}/out/*.deb)
  message(FATAL_ERROR "cpack did not make ${deb} (made: ${made})")
endif()

# ---- control fields ------------------------------------------------------
foreach(field Package Version Architecture Maintainer Depends Section Description)
  run("dpkg-deb -f ${field}" ${DPKG_DEB} -f ${deb} ${field})
  string(STRIP "${out}" value)
  set(control_${field} "${value}")
  message(STATUS "${field}: ${value}")
endforeach()
if(NOT control_Package STREQUAL "guestmem-dev" OR NOT control_Version STREQUAL "${VERSION}"
   OR NOT control_Architecture STREQUAL "all")
  message(FATAL_ERROR "control fields: Package '${control_Package}', Version '${control_Version}', "
                      "Architecture '${control_Architecture}'")
endif()
if(NOT control_Maintainer MATCHES "^[^<]+ <[^@>]+@[^>]+>$")
  message(FATAL_ERROR "Maintainer is not 'Name <email>': '${control_Maintainer}'")
endif()
if(NOT control_Depends MATCHES "(^|, )libboost-dev( |,|$)" OR control_Depends MATCHES "range-v3")
  message(FATAL_ERROR "Depends must name libboost-dev and not range-v3: '${control_Depends}'")
endif()

# ---- contents, unpacked into the scratch root ----------------------------
run("dpkg-deb -x" ${DPKG_DEB} -x ${deb} ${root})
foreach(f ${INCLUDEDIR}/guestmem/guestmem.hpp
          ${DATADIR}/cmake/guestmem/guestmemConfig.cmake
          ${DATADIR}/cmake/guestmem/guestmemConfigVersion.cmake
          ${DATADIR}/cmake/guestmem/guestmemTargets.cmake
          ${DATADIR}/pkgconfig/guestmem.pc
          ${INCLUDEDIR}/guestmem/core/version.hpp ${DOCDIR}/README.md ${DOCDIR}/LICENSE ${DOCDIR}/CHANGELOG.md
          ${DATADIR}/doc/guestmem-dev/copyright ${DATADIR}/doc/guestmem-dev/changelog.gz)
  if(NOT EXISTS ${root}/usr/${f})
    message(FATAL_ERROR "the package lacks /usr/${f}")
  endif()
endforeach()
file(GLOB_RECURSE config_files ${root}/usr/${DATADIR}/cmake/guestmem/*.cmake)
foreach(f IN LISTS config_files)
  file(READ ${f} text)
  if(text MATCHES "range-v3")
    message(FATAL_ERROR "${f} still names range-v3")
  endif()
endforeach()

# ---- find_package against the root, without range-v3 --------------------
run("the find_package consumer"
    ${CTEST} --build-and-test ${CONSUMERS_DIR}/installed ${WORK_DIR}/consumer-build
    --build-generator ${GENERATOR}
    --build-options -DCMAKE_PREFIX_PATH=${root}/usr -DCMAKE_CXX_COMPILER=${CXX}
                    -DCMAKE_DISABLE_FIND_PACKAGE_range-v3=ON
                    -DEXPECTED_PC=${root}/usr/${DATADIR}/pkgconfig/guestmem.pc
    --test-command ${CTEST} --output-on-failure)
file(STRINGS ${WORK_DIR}/consumer-build/CMakeCache.txt found REGEX "^guestmem_DIR:")
if(NOT found STREQUAL "guestmem_DIR:PATH=${root}/usr/${DATADIR}/cmake/guestmem")
  message(FATAL_ERROR "the consumer found another guestmem: ${found}")
endif()

# ---- pkg-config from the root --------------------------------------------
# Only the root's .pc files are visible (PKG_CONFIG_LIBDIR); the file is
# relocatable (prefix from ${pcfiledir}), so it resolves both as unpacked and
# as seen through a sysroot.
foreach(sysroot "" ${root})
  set(env PKG_CONFIG_LIBDIR=${root}/usr/${DATADIR}/pkgconfig PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=${sysroot})
  run("pkg-config --modversion" ${CMAKE_COMMAND} -E env ${env} ${PKG_CONFIG} --modversion guestmem)
  string(STRIP "${out}" modversion)
  if(NOT modversion STREQUAL "${VERSION}")
    message(FATAL_ERROR "pkg-config --modversion guestmem: '${modversion}', expected ${VERSION}")
  endif()
  run("pkg-config --cflags" ${CMAKE_COMMAND} -E env ${env} ${PKG_CONFIG} --cflags guestmem)
  string(STRIP "${out}" cflags)
  message(STATUS "pkg-config --cflags guestmem (sysroot '${sysroot}'): ${cflags}")
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  set(include_dir "")
  foreach(flag IN LISTS cflags)
    if(flag MATCHES "^-I(.*)")
      set(include_dir ${CMAKE_MATCH_1})
    endif()
  endforeach()
  file(REAL_PATH "${include_dir}" include_dir)
  file(REAL_PATH "${root}/usr/${INCLUDEDIR}" expected_include_dir)
  if(NOT include_dir STREQUAL expected_include_dir)
    message(FATAL_ERROR "pkg-config's include directory is ${include_dir}, expected ${expected_include_dir}")
  endif()
endforeach()
set(exe ${WORK_DIR}/pkg-config-consumer)
run("compiling consumer.cpp with pkg-config's flags" ${CXX} ${cflags} ${CONSUMERS_DIR}/consumer.cpp -o ${exe})
run("the pkg-config consumer" ${exe})
message(STATUS "guestmem-dev_${VERSION}_all.deb: control fields, contents, find_package and pkg-config consumers pass")

# ---- libguestmem-c-dev -----------------------------------------------------
if(NOT CC)
  return()
endif()
# The runtime (libguestmem-c0: the .so.0 alone, with its shlibs and ldconfig
# trigger) and the development package (everything a link needs).
file(GLOB c_deb ${WORK_DIR}/out/libguestmem-c-dev_${VERSION}_*.deb)
file(GLOB c0_deb ${WORK_DIR}/out/libguestmem-c0_${VERSION}_*.deb)
if(NOT c_deb OR NOT c0_deb)
  message(FATAL_ERROR "cpack did not make libguestmem-c0_${VERSION}_<arch>.deb and libguestmem-c-dev_${VERSION}_<arch>.deb")
endif()
run("dpkg-deb -f Depends" ${DPKG_DEB} -f ${c_deb} Depends)
if(NOT out MATCHES "guestmem-dev \\(= ${VERSION}\\)" OR NOT out MATCHES "libguestmem-c0 \\(= ${VERSION}\\)")
  message(FATAL_ERROR "libguestmem-c-dev must depend on guestmem-dev and libguestmem-c0 (= ${VERSION}): ${out}")
endif()
run("dpkg-deb -c" ${DPKG_DEB} -c ${c0_deb})
if(NOT out MATCHES "/usr/${LIBDIR}/libguestmem_c\\.so\\.0" OR out MATCHES "libguestmem_c\\.(a|so ) ")
  message(FATAL_ERROR "libguestmem-c0 must hold libguestmem_c.so.0 and no development file:\n${out}")
endif()
file(MAKE_DIRECTORY ${WORK_DIR}/control)
run("dpkg-deb -e" ${DPKG_DEB} -e ${c0_deb} ${WORK_DIR}/control)
file(READ ${WORK_DIR}/control/shlibs shlibs)
file(READ ${WORK_DIR}/control/triggers triggers)
if(NOT shlibs MATCHES "^libguestmem_c 0 libguestmem-c0" OR NOT triggers MATCHES "activate-noawait ldconfig")
  message(FATAL_ERROR "libguestmem-c0's shlibs ('${shlibs}') or triggers ('${triggers}') are wrong")
endif()
foreach(d ${c_deb} ${c0_deb})
  run("dpkg-deb -x" ${DPKG_DEB} -x ${d} ${root})
endforeach()
foreach(f ${LIBDIR}/libguestmem_c.so.0 ${LIBDIR}/libguestmem_c.so ${LIBDIR}/libguestmem_c.a
          ${LIBDIR}/pkgconfig/guestmem-c.pc ${LIBDIR}/pkgconfig/guestmem-c-static.pc
          ${LIBDIR}/cmake/guestmem_c/guestmem_cTargets.cmake ${INCLUDEDIR}/guestmem/c/guestmem.h
          ${DATADIR}/doc/libguestmem-c0/copyright ${DATADIR}/doc/libguestmem-c-dev/changelog.gz)
  if(NOT EXISTS ${root}/usr/${f})
    message(FATAL_ERROR "the packages lack /usr/${f}")
  endif()
endforeach()
run("the C find_package consumer"
    ${CTEST} --build-and-test ${CONSUMERS_DIR}/installed_c ${WORK_DIR}/c-consumer-build
    --build-generator ${GENERATOR}
    --build-options -DCMAKE_PREFIX_PATH=${root}/usr -DCMAKE_C_COMPILER=${CC}
    --test-command ${CTEST} --output-on-failure)
run("the C pkg-config consumer"
    ${CMAKE_COMMAND} -DPREFIX=${root}/usr -DLIBDIR=${LIBDIR} -DCC=${CC} -DPKG_CONFIG=${PKG_CONFIG}
    -DSOURCE=${CONSUMERS_DIR}/consumer.c -DWORK_DIR=${WORK_DIR}/c-pkgconfig -P ${CONSUMERS_DIR}/c_pkgconfig.cmake)
message(STATUS "libguestmem-c-dev: contents, find_package(guestmem COMPONENTS c) and pkg-config guestmem-c consumers pass")
