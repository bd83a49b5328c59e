# tests/fuzz/run_fuzzer.cmake — runs one libFuzzer target for a bounded time
# as a ctest test (cmake -P). Owns the run's folders and its pass/fail
# verdict; not for building the target (tests/fuzz/CMakeLists.txt does).
#
#   cmake -DFUZZER=<binary> -DWORK_DIR=<dir> -DSEED_CORPUS=<dir>
#         -DSECONDS=<n> -DRUNS=<n> -P run_fuzzer.cmake
#
# The fuzzer reads the seed corpus and its own working corpus (WORK_DIR/corpus,
# where it also writes what it finds), never writes into the source tree, and
# saves a failing input under WORK_DIR/artifacts/ (kept across runs; the
# failure message names only this run's). Any non-zero exit (crash,
# sanitizer report, leak, per-input timeout, broken invariant) fails the test.

foreach(_var FUZZER WORK_DIR SEED_CORPUS SECONDS RUNS)
    if(NOT DEFINED ${_var})
        message(FATAL_ERROR "run_fuzzer.cmake: -D${_var}=... is required")
    endif()
endforeach()
if(NOT EXISTS ${FUZZER})
    message(FATAL_ERROR "run_fuzzer.cmake: ${FUZZER} is not built")
endif()

file(MAKE_DIRECTORY ${WORK_DIR}/corpus ${WORK_DIR}/artifacts)
file(GLOB _before ${WORK_DIR}/artifacts/*)

execute_process(
    COMMAND ${FUZZER}
            -max_total_time=${SECONDS}
            -runs=${RUNS}
            -timeout=10
            -rss_limit_mb=2048
            -max_len=8192
            -print_final_stats=1
            -artifact_prefix=${WORK_DIR}/artifacts/
            ${WORK_DIR}/corpus
            ${SEED_CORPUS}
    RESULT_VARIABLE _rc)

if(NOT _rc EQUAL 0)
    file(GLOB _found ${WORK_DIR}/artifacts/*)
    if(_before)
        list(REMOVE_ITEM _found ${_before})
    endif()
    message(FATAL_ERROR "fuzzer failed (exit ${_rc}); input(s): ${_found}\n"
                        "reproduce with: ${FUZZER} <input>")
endif()
