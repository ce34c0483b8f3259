// Compiles include/kepmlog.h and kepmlog.hpp as strict C++11/C++17 with -Werror -pedantic.
#include <kepmlog.h>
#include <kepmlog.hpp>

int kepmlog_header_check_cxx();
int kepmlog_header_check_cxx() {
    kepmlog_logger_stats st = kepmlog_logger_stats();
    return static_cast<int>(st.accepted) + static_cast<int>(kepmlog::level::verbose);
}
