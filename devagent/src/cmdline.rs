//! A task's `arguments` is one string, a command line; this turns it into the argv the task
//! receives, and back (docs/kepm-contract.md section 3).
//!
//! The agent is a .NET service. On Linux and macOS .NET's `Process.Start` splits the
//! `Arguments` string itself (`ParseArgumentsIntoList` in System.Diagnostics.Process,
//! Process.Unix.cs) before calling `execve`; on Windows the string is passed through and the
//! child's C runtime splits it by the same (MSVC) rules. Implementing .NET's variant here means
//! `kepm-devagent run` hands a tool exactly the argv the agent on a Linux or macOS endpoint
//! would.

/// Only space and tab separate arguments: .NET's splitter does not treat newlines or other
/// white space as separators, so neither do we.
fn is_separator(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits a command line into arguments the way the agent's .NET runtime does on Linux and
/// macOS (the MSVC C runtime's rules, which a Windows child applies to the same string):
///
/// - runs of spaces and tabs outside double quotes separate arguments; leading and trailing
///   ones produce nothing, so an empty or blank string gives no arguments;
/// - a double quote starts or ends a quoted region and is itself removed; separators inside a
///   quoted region belong to the argument, and a region can start or end mid-word
///   (`a"b c"d` is the one argument `ab cd`); `""` on its own is an empty argument;
/// - inside a quoted region, `""` is one literal `"` and the region continues: this is the
///   rule .NET's `ParseArgumentsIntoList` applies (its source calls it compatible with the
///   C runtime and .NET Framework; some older Windows parsers end the region there
///   instead); outside a region, `""` opens and closes one and adds nothing;
/// - 2n backslashes followed by `"` give n backslashes, and the quote then opens or closes a
///   region as above; 2n+1 backslashes followed by `"` give n backslashes and a literal `"`;
///   backslashes not followed by `"` are literal (`C:\Program Files\X` needs no doubling,
///   but `"C:\dir\"` is `C:\dir"` plus whatever follows, since `\"` is a literal quote);
/// - a quoted region still open at the end of the string simply ends there.
pub fn split_command_line(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|&c| is_separator(c)).is_some() {}
        if chars.peek().is_none() {
            return args;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            match c {
                '\\' => {
                    let mut n = 0usize;
                    while chars.next_if_eq(&'\\').is_some() {
                        n += 1;
                    }
                    if chars.peek() == Some(&'"') {
                        push_backslashes(&mut arg, n / 2);
                        if n % 2 == 1 {
                            arg.push('"');
                            chars.next();
                        }
                        // With an even count the quote is left for the next turn, where it
                        // opens or closes a region.
                    } else {
                        push_backslashes(&mut arg, n);
                    }
                }
                '"' => {
                    chars.next();
                    if quoted && chars.next_if_eq(&'"').is_some() {
                        arg.push('"');
                    } else {
                        quoted = !quoted;
                    }
                }
                c if is_separator(c) && !quoted => break,
                c => {
                    arg.push(c);
                    chars.next();
                }
            }
        }
        args.push(arg);
    }
}

fn push_backslashes(s: &mut String, n: usize) {
    s.extend(std::iter::repeat_n('\\', n));
}

/// Quotes one argument so that [`split_command_line`] gives it back unchanged: as is when it
/// is non-empty and has no space, tab or double quote (backslashes are then literal);
/// otherwise in double quotes, with each `"` written `\"` and the backslashes before a `"`
/// or before the closing quote doubled.
pub fn quote_argument(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '"']) {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                push_backslashes(&mut out, backslashes * 2 + 1);
                out.push('"');
                backslashes = 0;
            }
            c => {
                push_backslashes(&mut out, backslashes);
                out.push(c);
                backslashes = 0;
            }
        }
    }
    push_backslashes(&mut out, backslashes * 2);
    out.push('"');
    out
}

/// The command line that [`split_command_line`] splits into exactly `args`: each one
/// [`quote_argument`]ed, joined with single spaces. Used for the one-string `arguments`
/// that lint suggests in place of an array, and to show a task's argv unambiguously.
pub fn join_command_line<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| quote_argument(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}
