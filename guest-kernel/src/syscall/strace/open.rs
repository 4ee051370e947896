//! Calls in progress, for strace's `<unfinished ...>` and `<... name resumed>` lines.
//!
//! A traced line is printed when its call returns. When another task prints a line while a
//! call is still in progress (it blocked: `read` on a pipe, `wait4`, a futex), strace shows
//! the waiting call's beginning first, ended with `<unfinished ...>`, and later its end as
//! `<... name resumed>` followed by the rest of the line:
//!
//! ```text
//! [pid 1] wait4(-1,  <unfinished ...>
//! [pid 2] exit_group(3) = ?
//! [pid 1] <... wait4 resumed>0x7ffc0, 0, NULL) = 2
//! ```
//!
//! [`OpenCalls`] is that bookkeeping alone (pure, host-tested): the dispatcher opens a
//! call when it begins, asks for the `<unfinished ...>` lines of the others before it
//! prints a line, and closes the call when it prints its end.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// One call in progress.
struct Open {
    /// `[pid N] name(args known at entry`.
    prefix: String,
    name: &'static str,
    /// More arguments follow (output arguments, formatted at the end).
    more: bool,
    /// Its `<unfinished ...>` line was printed.
    announced: bool,
}

/// The traced calls in progress, by thread.
#[derive(Default)]
pub struct OpenCalls {
    calls: BTreeMap<u32, Open>,
}

impl OpenCalls {
    /// No call in progress.
    pub const fn new() -> Self {
        OpenCalls {
            calls: BTreeMap::new(),
        }
    }

    /// Thread `tid` began call `name`; `prefix` is its line so far; `more`: output
    /// arguments follow.
    pub fn open(&mut self, tid: u32, name: &'static str, prefix: String, more: bool) {
        self.calls.insert(
            tid,
            Open {
                prefix,
                name,
                more,
                announced: false,
            },
        );
    }

    /// The `<unfinished ...>` lines of the calls of threads other than `tid` that have not
    /// had one yet (`tid` is about to print a line).
    pub fn announce_others(&mut self, tid: u32) -> Vec<String> {
        let mut lines = Vec::new();
        for (_, open) in self.calls.iter_mut().filter(|(&t, _)| t != tid) {
            if open.announced {
                continue;
            }
            open.announced = true;
            let sep = if open.more { ", " } else { "" };
            lines.push(format!("{}{sep} <unfinished ...>", open.prefix));
        }
        lines
    }

    /// The `<unfinished ...>` line of thread `tid`'s own call, if it has one in progress
    /// that has not had one yet (it is about to wait: a hang then shows where it hangs).
    pub fn announce(&mut self, tid: u32) -> Option<String> {
        let open = self.calls.get_mut(&tid).filter(|o| !o.announced)?;
        open.announced = true;
        let sep = if open.more { ", " } else { "" };
        Some(format!("{}{sep} <unfinished ...>", open.prefix))
    }

    /// Thread `tid`'s call ended and `line` is its whole line (beginning with the prefix
    /// given to [`Self::open`]): the line to print, `<... name resumed>` and the rest if
    /// its beginning was announced.
    pub fn close(&mut self, tid: u32, line: String) -> String {
        let Some(open) = self.calls.remove(&tid) else {
            return line;
        };
        if !open.announced {
            return line;
        }
        let pid = match line.find("] ") {
            Some(end) => &line[..end + 2],
            None => "",
        };
        let rest = line.get(open.prefix.len()..).unwrap_or("");
        let rest = if open.more {
            rest.strip_prefix(", ").unwrap_or(rest)
        } else {
            rest
        };
        format!("{pid}<... {} resumed>{rest}", open.name)
    }

    /// Forgets thread `tid`'s call (it ends without a line: the thread was killed).
    pub fn forget(&mut self, tid: u32) {
        self.calls.remove(&tid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn a_call_nobody_interrupts_prints_whole() {
        let mut o = OpenCalls::new();
        o.open(1, "read", "[pid 1] read(0".into(), true);
        assert!(o.announce_others(1).is_empty());
        let line = "[pid 1] read(0, \"ab\", 10) = 2".to_string();
        assert_eq!(o.close(1, line.clone()), line);
    }

    #[test]
    fn interleaved_calls_are_unfinished_then_resumed() {
        let mut o = OpenCalls::new();
        o.open(1, "wait4", "[pid 1] wait4(-1".into(), true);
        o.open(
            2,
            "nanosleep",
            "[pid 2] nanosleep({tv_sec=0, tv_nsec=1}, NULL".into(),
            false,
        );
        assert_eq!(
            o.announce_others(2),
            ["[pid 1] wait4(-1,  <unfinished ...>"]
        );
        // Announced once only.
        assert!(o.announce_others(2).is_empty());
        let two = "[pid 2] nanosleep({tv_sec=0, tv_nsec=1}, NULL) = 0".to_string();
        assert_eq!(o.close(2, two.clone()), two);
        assert!(o.announce_others(1).is_empty());
        let one = "[pid 1] wait4(-1, 0x7ffc0, 0, NULL) = 2".to_string();
        assert_eq!(
            o.close(1, one),
            "[pid 1] <... wait4 resumed>0x7ffc0, 0, NULL) = 2"
        );
    }

    #[test]
    fn a_call_that_waits_is_announced_once_by_its_own_thread() {
        let mut o = OpenCalls::new();
        assert_eq!(o.announce(1), None);
        o.open(1, "read", "[pid 1] read(0".into(), true);
        assert_eq!(
            o.announce(1).as_deref(),
            Some("[pid 1] read(0,  <unfinished ...>")
        );
        assert_eq!(o.announce(1), None);
        assert!(o.announce_others(2).is_empty());
        assert_eq!(
            o.close(1, "[pid 1] read(0, \"x\", 9) = 1".into()),
            "[pid 1] <... read resumed>\"x\", 9) = 1"
        );
    }

    #[test]
    fn a_call_without_output_arguments_resumes_at_its_parenthesis() {
        let mut o = OpenCalls::new();
        o.open(
            3,
            "futex",
            "[pid 3] futex(0x10, FUTEX_WAIT, 0, NULL".into(),
            false,
        );
        assert_eq!(
            o.announce_others(4),
            ["[pid 3] futex(0x10, FUTEX_WAIT, 0, NULL <unfinished ...>"]
        );
        assert_eq!(
            o.close(3, "[pid 3] futex(0x10, FUTEX_WAIT, 0, NULL) = 0".into()),
            "[pid 3] <... futex resumed>) = 0"
        );
        o.open(3, "read", "[pid 3] read(0".into(), true);
        o.forget(3);
        assert!(o.announce_others(4).is_empty());
    }
}
