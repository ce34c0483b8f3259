/* Compiles include/kepmlog.h as strict C99 with -Wall -Wextra -Werror -pedantic. */
#include <kepmlog.h>

int kepmlog_header_check_c(void);
int kepmlog_header_check_c(void) {
    kepmlog_logger_stats st = {0, 0, 0, 0, 0, 0, 0, false};
    kepmlog_level lv = KEPMLOG_LEVEL_VERBOSE;
    return (int)st.accepted + (int)lv + (int)KEPMLOG_OVERFLOW_BLOCK + KEPMLOG_VERSION_MAJOR;
}
