# Writes build_info.cpp with the commit being built; run by the dlcarbon_build_info target on
# every build (not only at configure time), so that the commit recorded in output files and
# calibration entries is the one the binary was built from. "-dirty" marks uncommitted changes
# to tracked files. configure_file leaves the file untouched when nothing changed, so an
# unchanged commit recompiles nothing.
#   cmake -DSOURCE_DIR=... -DIN=... -DOUT=... -DPROJECT_VERSION=... [-DGIT_EXECUTABLE=...] -P build_info.cmake
set(DLCARBON_GIT_SHA "unknown")
if(GIT_EXECUTABLE AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --short=12 HEAD
    WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE _sha
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
  if(_rc EQUAL 0 AND _sha)
    set(DLCARBON_GIT_SHA "${_sha}")
    execute_process(COMMAND "${GIT_EXECUTABLE}" diff --quiet HEAD --
      WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE _dirty ERROR_QUIET)
    if(_dirty EQUAL 1)
      string(APPEND DLCARBON_GIT_SHA "-dirty")
    endif()
  endif()
endif()
configure_file("${IN}" "${OUT}" @ONLY)
