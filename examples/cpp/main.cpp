// secret-scanner-cpp: a KEPM job tool in C++17 over kepmlog.hpp. Scans a directory tree for
// files that look like they hold plain-text secrets and reports counts and paths (never the
// secrets) to the agent's KeeperLogger.
//
// Started by the agent as `secret-scanner-cpp --keeper-api-base=https://127.0.0.1:6889 [DIR]`
// with KEEPER_JOB_ID in its environment.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include <kepmlog.hpp>

namespace fs = std::filesystem;

namespace {

const char *const kMarkers[] = {
    "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----", "AKIA", "password=", "secret_key",
};
constexpr std::uintmax_t kMaxFileBytes = 1024 * 1024;
constexpr long kMaxFiles = 20000;

std::string scan_root(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--keeper-api-base") {
            i++;
        } else if (a.rfind("--", 0) != 0) {
            return a;
        }
    }
    return ".";
}

bool has_marker(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const char *m : kMarkers) {
        if (text.find(m) != std::string::npos) return true;
    }
    return false;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        kepmlog::options opts;
        opts.source("SecretScanner").default_category("SecretsScan").args(argc, argv);
        kepmlog::logger log(opts);
        const std::string root = scan_root(argc, argv);

        log.info("Startup", "Scanning " + root + " for plain-text secrets");
        log.event(R"({"phase":"scan","status":"started"})");
        long files = 0, flagged = 0;
        std::error_code ec;
        fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
        if (ec) log.warning("Access", "Cannot read " + root + ": " + ec.message());
        for (; !ec && it != end && files < kMaxFiles; it.increment(ec)) {
            std::error_code fe;
            if (!it->is_regular_file(fe) || it->file_size(fe) > kMaxFileBytes || fe) continue;
            files++;
            if (has_marker(it->path())) {
                flagged++;
                log.warning("Finding", "Possible secret in " + it->path().string());
            }
            if (files % 1000 == 0) {
                log.event(R"({"phase":"scan","files":)" + std::to_string(files) + "}");
            }
        }
        log.event(R"({"phase":"scan","status":"done","files":)" + std::to_string(files) +
                  R"(,"issues":)" + std::to_string(flagged) + "}");
        const std::string summary = "Scan complete: " + std::to_string(flagged) +
                                    " issue(s) detected in " + std::to_string(files) + " file(s).";
        // Findings are the report, not a failure of the task: the exit code stays 0.
        log.log(flagged > 0 ? kepmlog::level::warning : kepmlog::level::info, "SecretsScan", summary);
        try {
            log.shutdown(std::chrono::seconds(10));  // deliver before the agent records the exit
        } catch (const kepmlog::error &e) {
            std::fprintf(stderr, "secret-scanner-cpp: %s\n", e.what());
        }
    } catch (const kepmlog::error &e) {
        std::fprintf(stderr, "secret-scanner-cpp: cannot log to KEPM: %s\n", e.what());
        return 2;
    }
    return 0;
}
