# oneDNN is a benchmark peer only (bench_kernels), never a dependency of the
# engine. Debian's oneDNN config requires OpenCL headers and library, which
# libdnnl-dev only recommends: a machine with oneDNN but without them must
# configure as "oneDNN not found", not fail. CMake cannot recover from a
# failed find_package(... REQUIRED) inside another package's config, so
# OpenCL is looked for first and oneDNN only when it is complete.
# `bash scripts/setup --peers` installs oneDNN with everything it needs.
option(DSVL2_ONEDNN "Measure oneDNN beside our kernels in bench_kernels when it is installed" ON)
set(DSVL2_HAVE_ONEDNN OFF)
if(DSVL2_ONEDNN)
  find_file(DSVL2_DNNL_CONFIG dnnl-config.cmake
            PATHS ${dnnl_DIR} ${CMAKE_PREFIX_PATH} ${CMAKE_SYSTEM_PREFIX_PATH}
            PATH_SUFFIXES . lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/dnnl lib/cmake/dnnl lib64/cmake/dnnl
            NO_DEFAULT_PATH)
  if(DSVL2_DNNL_CONFIG)
    find_package(OpenCL QUIET)
    if(OpenCL_FOUND)
      find_package(dnnl QUIET)
      if(TARGET DNNL::dnnl)
        set(DSVL2_HAVE_ONEDNN ON)
      endif()
    else()
      message(STATUS "oneDNN is installed but its OpenCL dependency is not: "
                     "the oneDNN benchmark peer is skipped (bash scripts/setup --peers installs both)")
    endif()
  endif()
endif()
message(STATUS "oneDNN benchmark peer: ${DSVL2_HAVE_ONEDNN}")
