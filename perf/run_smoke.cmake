# Runs fabric-perf with ARGS plus --json JSON, then checks the JSON (perf smoke tests).
#   cmake -DPERF=fabric-perf -DJSON=out.json -DMIN_RUNS=n "-DARGS=a;b;c" -P run_smoke.cmake
file(REMOVE "${JSON}")
execute_process(COMMAND "${PERF}" ${ARGS} --json "${JSON}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fabric-perf ${ARGS} exited with ${rc}")
endif()
set(FILE "${JSON}")
include(${CMAKE_CURRENT_LIST_DIR}/harness/check_json.cmake)
