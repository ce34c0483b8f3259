//! The task `arguments` splitter: a table of tricky command lines and the argv the agent's
//! .NET runtime gives the task for each (docs/kepm-contract.md section 3), and the quoting
//! that lint's suggested fix and run's header rely on.

use kepm_devagent::cmdline::{join_command_line, quote_argument, split_command_line};

/// (command line, argv). Raw strings: what is between `r"..."` / `r#"..."#` is exactly the
/// JSON string's value after JSON unescaping.
const CASES: &[(&str, &[&str])] = &[
    // Nothing to split.
    ("", &[]),
    ("   ", &[]),
    ("\t \t", &[]),
    // Separators: spaces and tabs, any number, leading and trailing ignored.
    ("a", &["a"]),
    ("a b", &["a", "b"]),
    ("  a    b  ", &["a", "b"]),
    ("a\tb\t\tc", &["a", "b", "c"]),
    (" \ta \t b\t ", &["a", "b"]),
    // Newlines and other white space are not separators for .NET.
    ("a\nb", &["a\nb"]),
    ("a\u{a0}b", &["a\u{a0}b"]),
    // Quotes group and are removed, also in the middle of a word.
    (r#""a b" c"#, &["a b", "c"]),
    (r#"a"b c"d"#, &["ab cd"]),
    (r#"--name="two words""#, &["--name=two words"]),
    (r#""a  b""#, &["a  b"]),
    ("\"a\tb\"", &["a\tb"]),
    // An empty quoted pair is an empty argument.
    (r#""""#, &[""]),
    (r#"a "" b"#, &["a", "", "b"]),
    (r#""" """#, &["", ""]),
    // `""` outside quotes opens and closes a region: adds nothing.
    (r#"a""b"#, &["ab"]),
    // `""` inside a quoted region: a literal quote, and the region goes on (.NET's rule).
    (r#""a""b""#, &[r#"a"b"#]),
    (r#""a"" b""#, &[r#"a" b"#]),
    (r#""a""b c" d"#, &[r#"a"b c"#, "d"]),
    (r#""""""#, &[r#"""#]),
    // Backslashes not followed by a quote are literal, a trailing one included.
    (r"a\", &[r"a\"]),
    (r"a\\", &[r"a\\"]),
    (r"a\b\\c", &[r"a\b\\c"]),
    (r"a\ b", &[r"a\", "b"]),
    // 2n+1 backslashes and a quote: n backslashes and a literal quote.
    (r#"\""#, &[r#"""#]),
    (r#"a\"b"#, &[r#"a"b"#]),
    (r#"\\\""#, &[r#"\""#]),
    (r#"\\\\\"x"#, &[r#"\\"x"#]),
    (r#""a\"b c""#, &[r#"a"b c"#]),
    // 2n backslashes and a quote: n backslashes, and the quote opens or closes a region.
    (r#"\\"#, &[r"\\"]),
    (r#"\\"a b""#, &[r"\a b"]),
    (r#"\\""#, &[r"\"]),
    (r#""a\\" b"#, &[r"a\", "b"]),
    (r#"\\\\"a""#, &[r"\\a"]),
    // Windows paths: backslashes stay; quote a path with a space in it.
    (
        r"C:\Program Files\X\x.exe",
        &[r"C:\Program", r"Files\X\x.exe"],
    ),
    (
        r#""C:\Program Files\X\x.exe""#,
        &[r"C:\Program Files\X\x.exe"],
    ),
    (
        r#""C:\Program Files\X\x.exe" --in "D:\data dir\in.txt""#,
        &[r"C:\Program Files\X\x.exe", "--in", r"D:\data dir\in.txt"],
    ),
    (r#"--out="C:\My Dir\o.txt""#, &[r"--out=C:\My Dir\o.txt"]),
    // The classic trap: `\"` before the closing quote is a literal quote, so the region
    // stays open and swallows what follows.
    (r#""C:\path\""#, &[r#"C:\path""#]),
    (r#""C:\path\" next"#, &[r#"C:\path" next"#]),
    (r#""C:\path\\" next"#, &[r"C:\path\", "next"]),
    // An unterminated quote runs to the end of the string.
    (r#""a b"#, &["a b"]),
    (r#"x "a  b  "#, &["x", "a  b  "]),
    (r#"x ""#, &["x", ""]),
    // Real job lines.
    (
        "--scan --keeper-api-base=https://127.0.0.1:6889",
        &["--scan", "--keeper-api-base=https://127.0.0.1:6889"],
    ),
    (
        r#"log --category Args "several words in one" --keeper-api-base=https://127.0.0.1:6889"#,
        &[
            "log",
            "--category",
            "Args",
            "several words in one",
            "--keeper-api-base=https://127.0.0.1:6889",
        ],
    ),
    (r#""héllo wörld" ✓"#, &["héllo wörld", "✓"]),
    // The example in docs/kepm-contract.md section 3.
    (
        r#"--keeper-api-base=https://127.0.0.1:6889 --out "C:\Program Files\X\out.txt" --label "two words""#,
        &[
            "--keeper-api-base=https://127.0.0.1:6889",
            "--out",
            r"C:\Program Files\X\out.txt",
            "--label",
            "two words",
        ],
    ),
];

#[test]
fn split_table() {
    let mut failures = Vec::new();
    for (line, want) in CASES {
        let got = split_command_line(line);
        if got != *want {
            failures.push(format!("{line:?}: expected {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn quoting_round_trips() {
    // Every argv of the table, and some that only quoting produces, must come back
    // unchanged from split(join(argv)): that is what makes lint's suggested string and
    // run's header exact.
    let mut argvs: Vec<Vec<String>> = CASES
        .iter()
        .map(|(_, argv)| argv.iter().map(|a| a.to_string()).collect())
        .collect();
    for extra in [
        &["", "", ""][..],
        &[r"ends\", r"ends\\", r#"q""#, r#"\""#, r#"\\""#],
        &[" ", "\t", "\"\"", r#"a\"b"#, r"\\server\share\dir name\"],
        &["--keeper-api-base={KeeperApiBaseUrl}", "x y"],
    ] {
        argvs.push(extra.iter().map(|a| a.to_string()).collect());
    }
    for argv in &argvs {
        let line = join_command_line(argv);
        assert_eq!(&split_command_line(&line), argv, "via {line:?}");
    }
}

#[test]
fn quoting_only_where_needed() {
    assert_eq!(
        quote_argument("--keeper-api-base={KeeperApiBaseUrl}"),
        "--keeper-api-base={KeeperApiBaseUrl}"
    );
    assert_eq!(quote_argument(r"C:\dir\x.exe"), r"C:\dir\x.exe");
    assert_eq!(quote_argument("x y"), r#""x y""#);
    assert_eq!(quote_argument(""), r#""""#);
    assert_eq!(quote_argument(r#"say "hi""#), r#""say \"hi\"""#);
    assert_eq!(quote_argument(r"C:\my dir\"), r#""C:\my dir\\""#);
    assert_eq!(
        join_command_line(&["--keeper-api-base={KeeperApiBaseUrl}", "x y"]),
        r#"--keeper-api-base={KeeperApiBaseUrl} "x y""#
    );
    assert_eq!(join_command_line::<&str>(&[]), "");
}
