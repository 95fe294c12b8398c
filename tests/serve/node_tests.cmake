# End-to-end tests of `dsvl2 serve` with real clients (Node.js): every
# tests/serve/*.test.mjs runs as one CTest test, label serve (plus browser for
# the headless-browser test). Their npm packages come from scripts/setup
# (npm ci in tests/serve). Without node they are not registered.
find_program(DSVL2_NODE node)
if(NOT DSVL2_NODE)
  message(STATUS "node not found: the serve end-to-end tests (tests/serve/*.test.mjs) are not registered")
  return()
endif()
set(_serve_dir ${CMAKE_CURRENT_LIST_DIR})
if(NOT EXISTS ${_serve_dir}/node_modules/.package-lock.json)
  message(STATUS "tests/serve/node_modules missing: run scripts/setup (npm ci) before the serve tests")
endif()

file(GLOB _serve_tests CONFIGURE_DEPENDS ${_serve_dir}/*.test.mjs)
foreach(_file ${_serve_tests})
  get_filename_component(_name ${_file} NAME_WE)
  set(_labels serve)
  if(_name STREQUAL "browser")
    list(APPEND _labels browser)
  endif()
  add_test(NAME serve_${_name}
           COMMAND ${DSVL2_NODE} --test --test-reporter=spec ${_file}
           WORKING_DIRECTORY ${_serve_dir})
  set_tests_properties(serve_${_name} PROPERTIES
    LABELS "${_labels}"
    ENVIRONMENT "DSVL2_BIN=$<TARGET_FILE:dsvl2>;DSVL2_SHARED_DIR=${DSVL2_SHARED_DIR};DSVL2_SOURCE_DIR=${PROJECT_SOURCE_DIR};DSVL2_TEST_ARTIFACTS=${PROJECT_BINARY_DIR}/test-artifacts"
    TIMEOUT 400
    # Each file starts servers that use every core and checks timings:
    # one at a time, and apart from each other's load.
    RESOURCE_LOCK dsvl2_serve
    # lib/server.mjs prints this when the binary or the tokenizer is missing.
    SKIP_REGULAR_EXPRESSION "dsvl2-serve: skipped")
endforeach()
