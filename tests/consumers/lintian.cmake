# tests/consumers/lintian.cmake (CTest package_lintian): cpack the .debs into
# a scratch directory and run lintian on them. Fails on any error or warning
# (cmake/package.cmake makes them clean; an override would be explained in
# the README).
# cmake -DBUILD_DIR= -DWORK_DIR= -DCPACK= -DLINTIAN= -P lintian.cmake
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CPACK} -G DEB --config ${BUILD_DIR}/CPackConfig.cmake -B ${WORK_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cpack failed (${rc}):\n${out}")
endif()
file(GLOB debs ${WORK_DIR}/*.deb)
list(LENGTH debs n)
if(n LESS 1)
  message(FATAL_ERROR "cpack made no .deb in ${WORK_DIR}")
endif()
execute_process(COMMAND ${LINTIAN} --fail-on error,warning --tag-display-limit 0 ${debs}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX REPLACE "running with root privileges is not recommended!\n?" "" err "${err}")
message(STATUS "lintian on ${n} packages:\n${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "lintian reported errors or warnings (exit ${rc})")
endif()
message(STATUS "lintian: ${n} packages, no error, no warning")
