# Runs fabric-perf report over fixed JSON files, as `make run` does last, and checks what a user
# gets: a summary line set for every family, one HTML page with charts, a clear error for a file
# that is not a report.
#   cmake -DPERF=fabric-perf -DDATA=dir-with-json -DOUT=dir -P run_report.cmake
set(html "${OUT}/report.html")
file(REMOVE "${html}")
execute_process(
  COMMAND "${PERF}" report "${DATA}/patterns.json" "${DATA}/journal.json" "${DATA}/majordomo.json"
          --html "${html}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fabric-perf report exited with ${rc}: ${err}")
endif()
foreach(line IN ITEMS "patterns (vs raw libzmq)" "journal (vs raw LMDB)"
                      "majordomo (vs raw DEALER/ROUTER echo)" "Charts and tables: ${html}")
  string(FIND "${out}" "${line}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the summary lacks \"${line}\":\n${out}")
  endif()
endforeach()
if(NOT EXISTS "${html}")
  message(FATAL_ERROR "no ${html}")
endif()
file(READ "${html}" page)
foreach(family IN ITEMS patterns journal majordomo)
  string(FIND "${page}" "<h2 id=\"family-${family}\"" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${html} has no section for ${family}")
  endif()
  string(SUBSTRING "${page}" ${at} 4000 start)
  string(FIND "${start}" "<svg" chart)
  if(chart EQUAL -1)
    message(FATAL_ERROR "${html}: the ${family} section starts without a chart")
  endif()
endforeach()

# A file that is not a report: exit status 1 and an error that names it.
execute_process(COMMAND "${PERF}" report "${CMAKE_CURRENT_LIST_FILE}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "run_report.cmake: not JSON")
  message(FATAL_ERROR "a file that is not JSON gave exit status ${rc} and: ${err}")
endif()
message(STATUS "fabric-perf report: summary and page as expected")
