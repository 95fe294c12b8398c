# dsvl2_add_module(name DEPS ...): a static library dsvl2_<name> from src/<name>/*.cpp.
# Sources are globbed so that adding a component file needs no CMake edit.
# Files named *_avx2.cpp / *_avx512.cpp get their ISA flags; they must only be
# called after a run-time CPU check (kernels_best(), src/ops/dispatch.cpp).
function(dsvl2_add_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(NOT srcs)  # a stage not written yet: header-only placeholder
    add_library(dsvl2_${name} INTERFACE)
    target_include_directories(dsvl2_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(dsvl2_${name} INTERFACE ${M_DEPS})
    return()
  endif()
  add_library(dsvl2_${name} STATIC ${srcs})
  target_include_directories(dsvl2_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(dsvl2_${name} PUBLIC ${M_DEPS})
  foreach(s ${srcs})
    if(s MATCHES "_avx512\\.cpp$")
      set_source_files_properties(${s} PROPERTIES COMPILE_OPTIONS
        "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx512bf16;-mavx512vnni;-mfma;-mf16c;-mavx2")
    elseif(s MATCHES "_avx2\\.cpp$")
      set_source_files_properties(${s} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    endif()
  endforeach()
endfunction()
