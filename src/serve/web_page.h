// The built-in web page served at GET / (src/serve/web/index.html, one
// self-contained file), compiled into the binary at build time by
// cmake/web_page.cmake so the server needs no files beside it.
#pragma once
#include <string_view>

namespace dsvl2::serve {

std::string_view web_page_html();

}  // namespace dsvl2::serve
