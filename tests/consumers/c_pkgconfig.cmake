# tests/consumers/c_pkgconfig.cmake — a C program built with nothing but the
# flags `pkg-config guestmem-c` reads from an installed prefix (only that
# prefix's .pc files visible), then run against the installed library; and
# one built with `pkg-config guestmem-c-static`, which must not need
# libguestmem_c.so at all (no DT_NEEDED entry for it).
# cmake -DPREFIX= -DLIBDIR= -DCC= -DPKG_CONFIG= -DSOURCE= -DWORK_DIR= -P c_pkgconfig.cmake
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

set(env PKG_CONFIG_LIBDIR=${PREFIX}/${LIBDIR}/pkgconfig PKG_CONFIG_PATH=)
run("pkg-config --cflags --libs guestmem-c" ${CMAKE_COMMAND} -E env ${env} ${PKG_CONFIG} --cflags --libs guestmem-c)
string(STRIP "${out}" flags)
message(STATUS "pkg-config --cflags --libs guestmem-c: ${flags}")
separate_arguments(flags UNIX_COMMAND "${flags}")
run("pkg-config --variable=libdir" ${CMAKE_COMMAND} -E env ${env} ${PKG_CONFIG} --variable=libdir guestmem-c)
string(STRIP "${out}" libdir)
file(MAKE_DIRECTORY ${WORK_DIR})
set(exe ${WORK_DIR}/c_pkgconfig_consumer)
run("compiling consumer.c with pkg-config's flags" ${CC} -std=c99 -Wall -Wextra -Werror -pedantic ${SOURCE} ${flags}
    -Wl,-rpath,${libdir} -o ${exe})
run("the pkg-config consumer" ${exe})
message(STATUS "${out}")

run("pkg-config --cflags --libs guestmem-c-static" ${CMAKE_COMMAND} -E env ${env} ${PKG_CONFIG} --cflags --libs guestmem-c-static)
string(STRIP "${out}" flags)
message(STATUS "pkg-config --cflags --libs guestmem-c-static: ${flags}")
separate_arguments(flags UNIX_COMMAND "${flags}")
set(exe ${WORK_DIR}/c_pkgconfig_static_consumer)
run("compiling consumer.c with guestmem-c-static's flags" ${CC} -std=c99 -Wall -Wextra -Werror -pedantic ${SOURCE} ${flags} -o ${exe})
run("the static pkg-config consumer" ${exe})
find_program(READELF readelf)
if(READELF)
  run("readelf -d" ${READELF} -d ${exe})
  if(out MATCHES "libguestmem_c")
    message(FATAL_ERROR "the static consumer still needs libguestmem_c.so:\n${out}")
  endif()
endif()
message(STATUS "guestmem-c-static links libguestmem_c.a: the program needs no libguestmem_c.so")
