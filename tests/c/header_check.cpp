// Compiles include/kepmlog.h and kepmlog.hpp as strict C++11/C++17 with -Werror -pedantic;
// with KEPMLOG_HEADER_CHECK_SPDLOG, kepmlog_spdlog.hpp too.
#include <kepmlog.h>
#include <kepmlog.hpp>

#ifdef KEPMLOG_HEADER_CHECK_SPDLOG
#include <kepmlog_spdlog.hpp>
// Instantiated in full, so every member is compiled, not only the ones a program calls.
template class kepmlog::spdlog_sink<std::mutex>;
template class kepmlog::spdlog_sink<spdlog::details::null_mutex>;
#endif

int kepmlog_header_check_cxx();
int kepmlog_header_check_cxx() {
    kepmlog_logger_stats st = kepmlog_logger_stats();
    return static_cast<int>(st.accepted) + static_cast<int>(kepmlog::level::verbose);
}
