//! A tiny check runner for the conformance programs: one `PASS name` or `FAIL name: why`
//! line per check as it finishes, a summary line at the end, exit status 0 only if every
//! check passed. A check that panics is a failure, not the end of the run.

use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;

/// What a check returns: a detail worth printing on success, or why it failed.
pub type CheckResult = Result<String, String>;

/// Runs checks and counts their outcomes.
pub struct Checks<W: Write> {
    program: &'static str,
    out: W,
    passed: usize,
    failed: Vec<String>,
}

impl Checks<std::io::Stdout> {
    /// A runner printing to standard output.
    pub fn stdout(program: &'static str) -> Self {
        Checks::new(program, std::io::stdout())
    }
}

impl<W: Write> Checks<W> {
    /// A runner for `program` (named in the summary line) printing to `out`.
    pub fn new(program: &'static str, out: W) -> Self {
        Checks {
            program,
            out,
            passed: 0,
            failed: Vec::new(),
        }
    }

    /// Runs `check` and prints its line. A panic inside it counts as a failure.
    pub fn run(&mut self, name: &str, check: impl FnOnce() -> CheckResult) {
        let outcome = panic::catch_unwind(AssertUnwindSafe(check))
            .unwrap_or_else(|payload| Err(format!("panicked: {}", panic_message(&*payload))));
        let line = match outcome {
            Ok(detail) if detail.is_empty() => {
                self.passed += 1;
                format!("PASS {name}")
            }
            Ok(detail) => {
                self.passed += 1;
                format!("PASS {name} ({detail})")
            }
            Err(why) => {
                self.failed.push(name.to_string());
                format!("FAIL {name}: {why}")
            }
        };
        self.line(&line);
    }

    /// Prints the summary and returns the exit status: success only if nothing failed.
    pub fn finish(mut self) -> ExitCode {
        let total = self.passed + self.failed.len();
        let line = if self.failed.is_empty() {
            format!("{}: all {total} checks passed", self.program)
        } else {
            format!(
                "{}: {} of {total} checks FAILED: {}",
                self.program,
                self.failed.len(),
                self.failed.join(", ")
            )
        };
        self.line(&line);
        if self.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Number of checks that passed so far.
    pub fn passed(&self) -> usize {
        self.passed
    }

    /// Names of the checks that failed so far.
    pub fn failed(&self) -> &[String] {
        &self.failed
    }

    /// The output, for tests.
    pub fn into_output(self) -> W {
        self.out
    }

    fn line(&mut self, line: &str) {
        // Output errors cannot be reported anywhere better; the exit status still tells.
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }
}

/// The message of a panic payload (`&str` or `String`, as `panic!` makes them).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

/// `Ok(detail)` if `condition`, else `Err(why)`: for checks made of several conditions.
pub fn ensure(condition: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(why())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_summary() {
        let mut checks = Checks::new("demo", Vec::new());
        checks.run("quiet", || Ok(String::new()));
        checks.run("detailed", || Ok("42 items".into()));
        checks.run("broken", || Err("expected 1, got 2".into()));
        assert_eq!(checks.passed(), 2);
        assert_eq!(checks.failed(), ["broken"]);
        let text = String::from_utf8(checks.into_output()).unwrap();
        assert_eq!(
            text,
            "PASS quiet\nPASS detailed (42 items)\nFAIL broken: expected 1, got 2\n"
        );
    }

    #[test]
    fn a_panicking_check_fails_and_the_run_goes_on() {
        let mut checks = Checks::new("demo", Vec::new());
        let hook = panic::take_hook();
        panic::set_hook(Box::new(|_| {}));
        checks.run("explodes", || panic!("kaboom {}", 7));
        checks.run("explodes-str", || panic!("static"));
        panic::set_hook(hook);
        checks.run("after", || Ok(String::new()));
        assert_eq!(checks.failed(), ["explodes", "explodes-str"]);
        let text = String::from_utf8(checks.into_output()).unwrap();
        assert!(
            text.contains("FAIL explodes: panicked: kaboom 7\n"),
            "{text}"
        );
        assert!(
            text.contains("FAIL explodes-str: panicked: static\n"),
            "{text}"
        );
        assert!(text.ends_with("PASS after\n"), "{text}");
    }

    #[test]
    fn summary_lines() {
        let mut out = Vec::new();
        let mut bad = Checks::new("demo", &mut out);
        bad.run("b", || Err("no".into()));
        bad.run("a", || Ok(String::new()));
        assert_eq!(bad.finish(), ExitCode::FAILURE);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("demo: 1 of 2 checks FAILED: b\n"), "{text}");
        let mut out = Vec::new();
        let mut fine = Checks::new("demo", &mut out);
        fine.run("a", || Ok(String::new()));
        assert_eq!(fine.finish(), ExitCode::SUCCESS);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("demo: all 1 checks passed\n"));
    }

    #[test]
    fn ensure_builds_the_reason_lazily() {
        assert_eq!(ensure(true, || unreachable!()), Ok(()));
        assert_eq!(ensure(false, || "why".into()), Err("why".to_string()));
    }
}
