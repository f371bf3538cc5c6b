# Runs the cross-host pairs on loopback: local_thr with remote_thr, then local_lat with
# remote_lat, for both implementations, and checks the JSON each measuring side writes.
#   cmake -DPERF=fabric-perf -DJSON_DIR=dir -P run_pairs.cmake
#
# tcp, not ipc: libzmq 4.3 can drop the tail of an ipc stream when the sender closes, whatever
# its linger (libzmq issue 4660), and remote_thr closes right after its last send. A port is
# picked at random; if the binding side reports it taken, the pair is run again on another.
#
# execute_process runs the commands of one call concurrently, as a pipeline: each command's
# stdout feeds the next one's stdin, so the side that prints its figures comes last (else it
# could die of SIGPIPE). The connecting side's connect is retried by libzmq until the binding
# side is up.

# run_pair(<name> <binder-args> <connector-args> <binder-prints>): on success, sets the port used.
function(run_pair name json binder connector binder_prints)
  foreach(attempt RANGE 1 5)
    string(RANDOM LENGTH 5 ALPHABET 0123456789 r)
    math(EXPR port "20000 + ${r} % 30000")
    set(ep tcp://127.0.0.1:${port})
    string(REPLACE "@EP@" "${ep}" b "${binder}")
    string(REPLACE "@EP@" "${ep}" c "${connector}")
    if(binder_prints)
      execute_process(COMMAND "${PERF}" ${c} COMMAND "${PERF}" ${b}
        RESULTS_VARIABLE codes ERROR_VARIABLE errors TIMEOUT 60)
    else()
      execute_process(COMMAND "${PERF}" ${b} COMMAND "${PERF}" ${c}
        RESULTS_VARIABLE codes ERROR_VARIABLE errors TIMEOUT 60)
    endif()
    if(codes STREQUAL "0;0")
      set(FILE "${json}")
      include(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/harness/check_json.cmake)
      return()
    endif()
    if(NOT errors MATCHES "in use")
      message(FATAL_ERROR "${name} on ${ep} exited with ${codes}: ${errors}")
    endif()
    message(STATUS "${name}: port ${port} is taken, trying another")
  endforeach()
  message(FATAL_ERROR "${name}: no free port found in 5 attempts")
endfunction()

# A port taken by someone else makes the connecting side wait for nobody: bound that wait.
set(ENV{FABRIC_PERF_PAIR_TIMEOUT_MS} 20000)

foreach(impl fabric raw)
  set(thr_json "${JSON_DIR}/pairs_thr_${impl}.json")
  run_pair("local_thr/remote_thr (${impl})" "${thr_json}"
    "local_thr;@EP@;64;20000;--impl;${impl};-q;--json;${thr_json}"
    "remote_thr;@EP@;64;20000;--impl;${impl}" TRUE)
  set(lat_json "${JSON_DIR}/pairs_lat_${impl}.json")
  run_pair("local_lat/remote_lat (${impl})" "${lat_json}"
    "local_lat;@EP@;64;2000;--impl;${impl}"
    "remote_lat;@EP@;64;2000;--impl;${impl};-q;--json;${lat_json}" FALSE)
endforeach()
