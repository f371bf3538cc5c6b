# Runs one libFuzzer target for a fixed time on a copy of its corpus: ctest's fuzz.run.<t>.
#   cmake -DFUZZER=... -DCORPUS=... -DREGRESSIONS=... [-DDICT=...] -DSECONDS=... -DRSS_LIMIT_MB=...
#         -DINPUT_TIMEOUT=... -DWORK=... -DARTIFACTS=... -P run_fuzzer.cmake
# libFuzzer writes new inputs into the first corpus directory, so that one is WORK (emptied
# before and removed after); the committed corpus and regressions are only read. A crash, leak,
# timeout or out-of-memory fails the run and leaves the input in ARTIFACTS.
foreach(var FUZZER CORPUS REGRESSIONS SECONDS RSS_LIMIT_MB INPUT_TIMEOUT WORK ARTIFACTS)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "no fuzzer at ${FUZZER}: build the fabric_libfuzzer target first")
endif()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK} ${ARTIFACTS})
set(args -max_total_time=${SECONDS} -rss_limit_mb=${RSS_LIMIT_MB} -timeout=${INPUT_TIMEOUT}
  -artifact_prefix=${ARTIFACTS}/ -print_final_stats=1)
if(DEFINED DICT AND NOT DICT STREQUAL "")
  list(APPEND args -dict=${DICT})
endif()
set(dirs ${WORK} ${CORPUS})
if(EXISTS ${REGRESSIONS})
  list(APPEND dirs ${REGRESSIONS})
endif()
execute_process(COMMAND ${FUZZER} ${args} ${dirs} RESULT_VARIABLE result)
file(REMOVE_RECURSE ${WORK})
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${result}): the input that broke it is in ${ARTIFACTS}; "
                      "see tests/fuzz/README.md for turning it into a regression")
endif()
