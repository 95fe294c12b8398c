# The Slurm array-job tests: tests/slurm/*_array_test.sh start a private
# one-node cluster on localhost (cluster.sh: munged, slurmctld and slurmd from
# Debian's slurm-wlm and munge, on their own ports, key and folders), run
# scripts/slurm/*.sbatch as an array of 4 tasks, kill one mid-run, resubmit
# it and check that every record is there exactly once. Label slurm
# (`ctest -LE slurm` leaves them out). They exit 77, shown as skipped, where
# the daemons cannot start (no binaries, no permission).
find_program(DSVL2_BASH bash)
if(NOT DSVL2_BASH)
  message(STATUS "bash not found: the Slurm array tests (tests/slurm) are not registered")
  return()
endif()
foreach(_cmd synth recaption)
  add_test(NAME slurm_${_cmd}_array COMMAND ${DSVL2_BASH} ${CMAKE_CURRENT_LIST_DIR}/${_cmd}_array_test.sh)
  set_tests_properties(slurm_${_cmd}_array PROPERTIES
    LABELS slurm
    ENVIRONMENT "DSVL2_BIN=$<TARGET_FILE:dsvl2>;DSVL2_SOURCE_DIR=${PROJECT_SOURCE_DIR};DSVL2_SHARED_DIR=${DSVL2_SHARED_DIR}"
    SKIP_RETURN_CODE 77
    # 15-30 s each on 2 cores; the scripts' own waits end well before this,
    # so their trap always stops the cluster.
    TIMEOUT 300
    # Each keeps every core busy and times a kill against its progress: one
    # at a time (their clusters would not collide: own folders and ports).
    RESOURCE_LOCK dsvl2_slurm)
endforeach()
