# The built-in web page (src/serve/web/index.html) compiled into dsvl2_serve
# as dsvl2::serve::web_page_html() (src/serve/web_page.h). The generated .cpp
# lives in the build tree; editing the page rebuilds it.
set(DSVL2_WEB_PAGE ${PROJECT_SOURCE_DIR}/src/serve/web/index.html)
set(DSVL2_WEB_PAGE_CPP ${PROJECT_BINARY_DIR}/generated/serve/web_page.cpp)
add_custom_command(
  OUTPUT ${DSVL2_WEB_PAGE_CPP}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/generated/serve
  COMMAND ${CMAKE_COMMAND} -DIN=${DSVL2_WEB_PAGE} -DOUT=${DSVL2_WEB_PAGE_CPP}
          -DHEADER=serve/web_page.h -DFUNCTION=dsvl2::serve::web_page_html
          -P ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
  DEPENDS ${DSVL2_WEB_PAGE} ${PROJECT_SOURCE_DIR}/cmake/embed_text.cmake
  COMMENT "Embedding src/serve/web/index.html"
  VERBATIM)
target_sources(dsvl2_serve PRIVATE ${DSVL2_WEB_PAGE_CPP})
