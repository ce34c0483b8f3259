//! Whether an `executablePath` is absolute on the OS a job targets, whatever OS lint runs
//! on: a Windows job linted on Linux is checked with Windows rules ("Job Minimal Windows"
//! writes `C:\Program Files\...`), a Linux or macOS job with POSIX rules.

use crate::os::Os;

/// True when `p` is an absolute path on `os`.
pub fn is_absolute_on(os: Os, p: &str) -> bool {
    match os {
        Os::Windows => is_windows_absolute(p),
        Os::Linux | Os::MacOs => p.starts_with('/'),
    }
}

/// `C:\x` or `C:/x` (a drive letter and a root), `\\server\share\x` (UNC), `\\?\...` and
/// `\\.\...` (device paths). `C:x` is relative to the drive's current directory and `\x`
/// to the current drive, so neither is absolute.
fn is_windows_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    let sep = |c: u8| c == b'\\' || c == b'/';
    match b {
        [d, b':', s, ..] if d.is_ascii_alphabetic() && sep(*s) => true,
        [a, c, rest @ ..] if sep(*a) && sep(*c) => {
            // \\?\C:\x, \\.\pipe, or \\server\share: something must follow the prefix.
            !rest.is_empty() && !sep(rest[0])
        }
        _ => false,
    }
}

/// What an absolute path looks like on `os`, for fixes.
pub fn example(os: Os) -> &'static str {
    match os {
        Os::Windows => "C:\\Program Files\\KeeperPrivilegeManager\\Jobs\\bin\\my-tool\\my-tool.exe",
        Os::Linux => "/opt/KeeperPrivilegeManager/Jobs/bin/my-tool/my-tool",
        Os::MacOs => "/Library/KeeperPrivilegeManager/Jobs/bin/my-tool/my-tool",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_rules() {
        for ok in [
            "C:\\Program Files\\KeeperPrivilegeManager\\Jobs\\bin\\MyTool\\MyTool.exe",
            "c:/tools/x.exe",
            "\\\\server\\share\\x.exe",
            "\\\\?\\C:\\very\\long\\x.exe",
            "\\\\.\\pipe\\x",
        ] {
            assert!(is_absolute_on(Os::Windows, ok), "{ok}");
        }
        for bad in [
            "C:x.exe", "\\x.exe", "x.exe", "/opt/x", "\\\\", "\\\\\\x", "1:\\x",
        ] {
            assert!(!is_absolute_on(Os::Windows, bad), "{bad}");
        }
    }

    #[test]
    fn posix_rules() {
        assert!(is_absolute_on(Os::Linux, "/opt/x"));
        assert!(is_absolute_on(Os::MacOs, "/Applications/x"));
        for bad in ["C:\\x.exe", "bin/x", "./x", "~/x", "\\\\server\\share\\x"] {
            assert!(!is_absolute_on(Os::Linux, bad), "{bad}");
        }
    }
}
