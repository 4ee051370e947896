//! The scenario list `tests/scenarios.txt`, shared by the KVM tier (here) and the QEMU-based
//! hardware-KVM tier (`tests/hwkvm/`), so both run the same boots with the same expectations.
//!
//! One scenario per line: `name | expected_exit | expected_output_substring | arguments`.
//! Fields are separated by ` | `; the arguments (given to `astra-vmm` after `--kernel` and
//! `--rootfs`) are split on whitespace; an empty expected output is not checked. The expected
//! output may start with `stdout:` or `stderr:` to say which stream of `astra-vmm` must
//! contain it (programs' output is on stdout; kernel messages, `--strace`, `--stats` and the
//! VMM's reports on stderr); without a prefix either stream may. Blank lines and lines
//! starting with `#` are ignored.

use std::fmt;
use std::path::Path;

/// Which output stream of `astra-vmm` an expected output must appear in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (the guest program's stdout).
    Stdout,
    /// Standard error (the program's stderr, kernel and VMM messages).
    Stderr,
    /// Either of them.
    Any,
}

/// A substring that must occur in an output stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedOutput {
    /// Where to look.
    pub stream: Stream,
    /// What to find (fixed string, case-sensitive).
    pub text: String,
}

impl ExpectedOutput {
    /// Parses the expected-output field: `stdout:TEXT`, `stderr:TEXT` or `TEXT`; `None` for
    /// an empty field, an error for a prefix without text.
    pub fn parse(field: &str) -> Result<Option<ExpectedOutput>, String> {
        let field = field.trim();
        let (stream, text) = if let Some(text) = field.strip_prefix("stdout:") {
            (Stream::Stdout, text.trim())
        } else if let Some(text) = field.strip_prefix("stderr:") {
            (Stream::Stderr, text.trim())
        } else {
            (Stream::Any, field)
        };
        if text.is_empty() {
            return match stream {
                Stream::Any => Ok(None),
                _ => Err(format!(
                    "expected output `{field}` names a stream but no text"
                )),
            };
        }
        Ok(Some(ExpectedOutput {
            stream,
            text: text.to_string(),
        }))
    }

    /// Whether the output of a run satisfies this expectation.
    pub fn found_in(&self, stdout: &str, stderr: &str) -> bool {
        match self.stream {
            Stream::Stdout => stdout.contains(&self.text),
            Stream::Stderr => stderr.contains(&self.text),
            Stream::Any => stdout.contains(&self.text) || stderr.contains(&self.text),
        }
    }

    /// Where it was looked for, for failure reports: `stdout`, `stderr`, `stdout or stderr`.
    pub fn searched(&self) -> &'static str {
        match self.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Any => "stdout or stderr",
        }
    }
}

/// One boot and what it must produce.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Unique name, `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// The exit code `astra-vmm` must return.
    pub expected_exit: i32,
    /// A substring the VMM's stdout and/or stderr must contain, if any.
    pub expected_output: Option<ExpectedOutput>,
    /// Arguments for `astra-vmm` after `--kernel ... --rootfs ...`.
    pub args: Vec<String>,
    /// A signal the harness sends astra-vmm while it runs (`@NAME@SECS` before the
    /// arguments): what the host terminal's Ctrl-C does.
    pub signal: Option<HostSignal>,
    /// 1-based line number in the file, for reports.
    pub line: usize,
}

/// A signal sent to astra-vmm some time after it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSignal {
    /// Its number (SIGINT, SIGQUIT, SIGTERM).
    pub number: i32,
    /// Its name without `SIG`, as `kill -NAME` takes it.
    pub name: String,
    /// Seconds after the start.
    pub after_secs: f64,
}

impl HostSignal {
    /// Parses `@NAME@SECS` (NAME: INT, QUIT, TERM or TSTP; SECS: a positive number).
    /// TSTP (Ctrl-Z) is followed by CONT a second later (the host shell's `fg`).
    pub fn parse(word: &str) -> Result<HostSignal, String> {
        let bad = || format!("`{word}`: expected @INT@SECS, @QUIT@SECS, @TERM@SECS or @TSTP@SECS");
        let rest = word.strip_prefix('@').ok_or_else(bad)?;
        let (name, secs) = rest.split_once('@').ok_or_else(bad)?;
        let number = match name {
            "INT" => 2,
            "QUIT" => 3,
            "TERM" => 15,
            "TSTP" => 20,
            _ => return Err(bad()),
        };
        let after_secs: f64 = secs.parse().map_err(|_| bad())?;
        if !(after_secs.is_finite() && after_secs > 0.0 && after_secs < 60.0) {
            return Err(bad());
        }
        Ok(HostSignal {
            number,
            name: name.to_string(),
            after_secs,
        })
    }
}

/// A malformed scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number of the offending line (0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "scenarios: {}", self.message)
        } else {
            write!(f, "scenarios line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses a scenario file's text.
pub fn parse(text: &str) -> Result<Vec<Scenario>, ParseError> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let scenario = parse_line(raw, line)?;
        if let Some(first) = scenarios.iter().find(|s| s.name == scenario.name) {
            return Err(ParseError {
                line,
                message: format!(
                    "duplicate scenario name `{}` (first on line {})",
                    scenario.name, first.line
                ),
            });
        }
        scenarios.push(scenario);
    }
    Ok(scenarios)
}

/// Reads and parses a scenario file; an unreadable file or one without scenarios is an error.
pub fn load(path: &Path) -> Result<Vec<Scenario>, ParseError> {
    let text = std::fs::read_to_string(path).map_err(|err| ParseError {
        line: 0,
        message: format!("cannot read {}: {err}", path.display()),
    })?;
    let scenarios = parse(&text)?;
    if scenarios.is_empty() {
        return Err(ParseError {
            line: 0,
            message: format!("{} defines no scenario", path.display()),
        });
    }
    Ok(scenarios)
}

fn parse_line(raw: &str, line: usize) -> Result<Scenario, ParseError> {
    let error = |message: String| ParseError { line, message };
    let mut fields: Vec<&str> = raw.split(" | ").collect();
    // An empty last field loses its trailing space to editors that strip whitespace:
    // `init | 0 | astra init |` means the same as `init | 0 | astra init | `.
    if fields.len() == 3 {
        if let Some(stripped) = fields[2].trim_end().strip_suffix('|') {
            if stripped.is_empty() || stripped.ends_with(' ') {
                fields[2] = stripped;
                fields.push("");
            }
        }
    }
    if fields.len() != 4 {
        return Err(error(format!(
            "expected 4 fields `name | expected_exit | expected_output | arguments` separated \
             by ` | `, found {}: `{raw}`",
            fields.len()
        )));
    }
    let name = fields[0].trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(error(format!(
            "scenario name `{name}` must be non-empty and use only letters, digits, `_`, `.`, `-`"
        )));
    }
    let exit_text = fields[1].trim();
    let expected_exit = match exit_text.parse::<i32>() {
        Ok(code) if (0..=255).contains(&code) => code,
        _ => {
            return Err(error(format!(
                "expected exit code `{exit_text}` is not a number in 0..=255"
            )))
        }
    };
    let expected_output = ExpectedOutput::parse(fields[2]).map_err(error)?;
    let mut args: Vec<String> = fields[3].split_whitespace().map(str::to_string).collect();
    let signal = match args.first() {
        Some(first) if first.starts_with('@') => {
            let signal = HostSignal::parse(first).map_err(error)?;
            args.remove(0);
            Some(signal)
        }
        _ => None,
    };
    if args.iter().any(|a| {
        a == "--kernel"
            || a == "--rootfs"
            || a.starts_with("--kernel=")
            || a.starts_with("--rootfs=")
    }) {
        return Err(error(
            "arguments must not name --kernel or --rootfs: each tier supplies its own".into(),
        ));
    }
    Ok(Scenario {
        name: name.to_string(),
        expected_exit,
        expected_output,
        args,
        signal,
        line,
    })
}

/// The guest timeout in seconds a scenario asks for with `--timeout SECS`, if any.
pub fn guest_timeout_secs(args: &[String]) -> Option<f64> {
    let mut iter = args.iter().take_while(|a| *a != "--");
    while let Some(arg) = iter.next() {
        let value = if arg == "--timeout" {
            iter.next()?.as_str()
        } else if let Some(value) = arg.strip_prefix("--timeout=") {
            value
        } else {
            continue;
        };
        return value
            .parse()
            .ok()
            .filter(|secs: &f64| secs.is_finite() && *secs > 0.0);
    }
    None
}

/// `args` with `--timeout secs` added before any `--`, unless they already set a timeout,
/// so that every boot ends even if the VMM's default is to wait forever.
pub fn with_default_timeout(args: &[String], secs: u64) -> Vec<String> {
    let has_timeout = args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--timeout" || a.starts_with("--timeout="));
    if has_timeout {
        return args.to_vec();
    }
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut out = args[..split].to_vec();
    out.push("--timeout".into());
    out.push(secs.to_string());
    out.extend_from_slice(&args[split..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# name | expected_exit | expected_output_substring | astra-vmm arguments
hello | 0 | Hello from astra! | -- /bin/hello

  # indented comment
init | 0 | astra init | 
true | 0 |  | -- /bin/true
fault | 139 | SIGSEGV | -- /bin/fault
timeout | 253 | timed out | --timeout 2 -- /bin/spin
";

    #[test]
    fn a_leading_at_word_is_a_host_signal() {
        let s = parse("c | 7 | stdout:caught | @INT@1.5 -- /bin/sh /x.sh\n").unwrap();
        assert_eq!(s[0].args, ["--", "/bin/sh", "/x.sh"]);
        let sig = s[0].signal.as_ref().unwrap();
        assert_eq!(
            (sig.number, sig.name.as_str(), sig.after_secs),
            (2, "INT", 1.5)
        );
        for bad in ["@KILL@1", "@INT", "@INT@0", "@INT@x", "@INT@100"] {
            let line = format!("c | 0 | | {bad} -- /bin/true\n");
            assert!(parse(&line).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_good_lines_and_skips_comments_and_blanks() {
        let scenarios = parse(SAMPLE).unwrap();
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["hello", "init", "true", "fault", "timeout"]);
        assert_eq!(
            scenarios[0],
            Scenario {
                name: "hello".into(),
                expected_exit: 0,
                expected_output: Some(ExpectedOutput {
                    stream: Stream::Any,
                    text: "Hello from astra!".into()
                }),
                args: vec!["--".into(), "/bin/hello".into()],
                signal: None,
                line: 2,
            }
        );
        assert_eq!(scenarios[1].args, Vec::<String>::new());
        assert_eq!(scenarios[1].line, 5);
        assert_eq!(scenarios[2].expected_output, None);
        assert_eq!(scenarios[3].expected_exit, 139);
        assert_eq!(
            scenarios[4].args,
            ["--timeout", "2", "--", "/bin/spin"].map(String::from)
        );
    }

    #[test]
    fn an_empty_last_field_survives_trailing_whitespace_stripping() {
        let scenarios = parse("init | 0 | astra init |\nt | 0 |  |").unwrap();
        assert_eq!(text(&scenarios[0]), Some("astra init"));
        assert!(scenarios[0].args.is_empty());
        assert_eq!(scenarios[1].expected_output, None);
    }

    #[test]
    fn expected_output_may_contain_a_pipe_without_spaces() {
        let scenarios = parse("p | 0 | a|b | -- /bin/true").unwrap();
        assert_eq!(text(&scenarios[0]), Some("a|b"));
    }

    fn text(s: &Scenario) -> Option<&str> {
        s.expected_output.as_ref().map(|e| e.text.as_str())
    }

    #[test]
    fn expected_output_may_name_its_stream() {
        let scenarios = parse(
            "a | 0 | stdout: Hello | -- /bin/hello\n\
             b | 0 | stderr:SIGSEGV | \n\
             c | 0 | Stdout: x | \n",
        )
        .unwrap();
        let expected = |i: usize| scenarios[i].expected_output.clone().unwrap();
        assert_eq!(expected(0).stream, Stream::Stdout);
        assert_eq!(expected(0).text, "Hello");
        assert_eq!(expected(1).stream, Stream::Stderr);
        assert_eq!(expected(1).text, "SIGSEGV");
        // Prefixes are lowercase: anything else is part of the text.
        assert_eq!(expected(2).stream, Stream::Any);
        assert_eq!(expected(2).text, "Stdout: x");

        assert!(expected(0).found_in("Hello there", ""));
        assert!(!expected(0).found_in("", "Hello there"));
        assert!(expected(1).found_in("", "killed by SIGSEGV"));
        assert!(!expected(1).found_in("SIGSEGV", ""));
        assert!(expected(2).found_in("", "Stdout: x"));
        assert_eq!(expected(2).searched(), "stdout or stderr");

        let err = parse("a | 0 | stderr: | \n").unwrap_err();
        assert!(err.message.contains("names a stream but no text"), "{err}");
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let cases = [
            ("ok | 0 | x | \nbroken line\n", 2, "expected 4 fields"),
            ("# c\n\nx | 0 | y\n", 3, "expected 4 fields"),
            ("x | 0 | y | a | b\n", 1, "found 5"),
            ("x | abc | y | \n", 1, "not a number"),
            ("x | 256 | y | \n", 1, "not a number"),
            ("x | -1 | y | \n", 1, "not a number"),
            (" | 0 | y | \n", 1, "scenario name"),
            ("a b | 0 | y | \n", 1, "scenario name"),
            (
                "x | 0 | y | \nx | 1 | z | \n",
                2,
                "duplicate scenario name `x` (first on line 1)",
            ),
            ("x | 0 | y | --kernel k.elf\n", 1, "--kernel"),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(needle), "{text:?}: {err}");
            assert!(err
                .to_string()
                .starts_with(&format!("scenarios line {line}: ")));
        }
    }

    #[test]
    fn a_file_without_scenarios_is_an_error() {
        assert_eq!(parse("# only a comment\n\n").unwrap(), Vec::new());
        let dir = crate::tempdir::TempDir::new("scenario-load");
        let path = dir.path().join("scenarios.txt");
        std::fs::write(&path, "# nothing here\n").unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.message.contains("defines no scenario"), "{err}");
        let err = load(&dir.path().join("missing.txt")).unwrap_err();
        assert!(err.message.contains("cannot read"), "{err}");
    }

    #[test]
    fn guest_timeouts_are_found_and_defaulted_before_the_program() {
        let args: Vec<String> = ["--timeout", "2", "--", "/bin/spin"]
            .map(String::from)
            .into();
        assert_eq!(guest_timeout_secs(&args), Some(2.0));
        assert_eq!(with_default_timeout(&args, 20), args);

        let args: Vec<String> = ["--", "/bin/x", "--timeout", "5"].map(String::from).into();
        assert_eq!(guest_timeout_secs(&args), None);
        assert_eq!(
            with_default_timeout(&args, 20),
            ["--timeout", "20", "--", "/bin/x", "--timeout", "5"].map(String::from)
        );
        assert_eq!(
            with_default_timeout(&[], 20),
            ["--timeout", "20"].map(String::from)
        );
        let args: Vec<String> = vec!["--timeout=2.5".into()];
        assert_eq!(guest_timeout_secs(&args), Some(2.5));
        let args: Vec<String> = vec!["--timeout".into(), "soon".into()];
        assert_eq!(guest_timeout_secs(&args), None);
    }
}
