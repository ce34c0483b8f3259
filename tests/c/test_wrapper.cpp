// The C++ wrapper: a constructor that throws leaves nothing behind (no handle to free, nothing
// that fails at exit), and the stderr options reach the library.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <kepmlog.hpp>

static int failed = 0;

static void check(bool ok, const char *what) {
    if (!ok) {
        ++failed;
        std::printf("not ok - %s\n", what);
    }
}

int main() {
    unsetenv("KEEPER_JOB_ID");
    unsetenv("KEPMLOG_FALLBACK");
    try {
        kepmlog::options o;
        o.source("CppTool");
        kepmlog::logger log(o);
        check(false, "a logger without a job id throws");
    } catch (const kepmlog::error &e) {
        check(e.status() == KEPMLOG_ERR_MISSING_JOB_ID, "the status is KEPMLOG_ERR_MISSING_JOB_ID");
        check(std::string(e.what()).find("mqttTopics") != std::string::npos, "the text names the fix");
    }
    try {
        kepmlog::options o;
        o.source("CppTool").fallback(static_cast<kepmlog_fallback>(7));
        check(false, "an unknown fallback throws");
    } catch (const kepmlog::error &e) {
        check(e.status() == KEPMLOG_ERR_INVALID_ARGUMENT, "an unknown fallback is an invalid argument");
    }
    {
        kepmlog::options o;
        o.source("CppTool").fallback(KEPMLOG_FALLBACK_STDERR).stderr_diagnostics(false).undelivered_to_stderr(true);
        kepmlog::logger log(o);
        check(log.writes_to_stderr(), "fallback stderr without a job id writes to stderr");
        check(log.info("Wrapper", "by hand") == KEPMLOG_OK, "logging works");
        check(log.printed() == 1, "one record printed");
        log.shutdown(std::chrono::milliseconds(100));
    }
    std::printf("# kepmlog C++ wrapper tests: %d failed\n", failed);
    return failed == 0 ? 0 : 1;
}
