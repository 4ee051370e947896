//! What the init program starts with: its argv, its environment and its working directory,
//! encoded for the boot protocol's init-arguments area ([`INIT_ARGS_GPA`]).
//!
//! The area holds the argv block, then the environment block (each NUL-terminated strings
//! back to back; empty strings are kept), then the working directory (no NUL). Everything
//! is checked here, before a VM exists: no NUL inside a string, no string longer than
//! Linux's `MAX_ARG_STRLEN`, the whole within [`INIT_ARGS_MAX`].

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use hypercall_abi::layout::{INIT_ARGS_GPA, INIT_ARGS_MAX};

/// The environment init gets when neither `-e` nor `--env-host` is given (Linux's own init
/// gets `HOME=/ TERM=linux`; a PATH is added so that programs find `/bin`'s tools).
pub const DEFAULT_ENV: [&str; 3] = ["PATH=/bin", "HOME=/", "TERM=dumb"];
/// The working directory init starts in when `--cwd` is not given.
pub const DEFAULT_CWD: &str = "/";
/// Longest single argument or environment string, with its NUL (Linux's
/// `MAX_ARG_STRLEN`, 32 pages).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Errors in the init program's argv, environment or working directory.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InitArgsError {
    /// Everything together does not fit the init-arguments area.
    #[error(
        "Program arguments, environment and working directory take {len} bytes, at most {max} fit: pass fewer or shorter ones"
    )]
    TooLong {
        /// Bytes needed, with every NUL.
        len: usize,
        /// Bytes available.
        max: u64,
    },
    /// One string is longer than Linux accepts.
    #[error("{what} is {len} bytes long, longer than Linux's limit of {} bytes per string", MAX_ARG_STRLEN - 1)]
    StringTooLong {
        /// Which string ("Program argument 3", "Environment variable PATH").
        what: String,
        /// Its length.
        len: usize,
    },
    /// An argument contains a NUL byte, which cannot be passed to the guest.
    #[error("Program argument {index} contains a NUL byte")]
    ArgvNul {
        /// Position in argv.
        index: usize,
    },
    /// An environment assignment contains a NUL byte.
    #[error("Environment variable '{0}' contains a NUL byte")]
    EnvNul(String),
    /// `-e =VALUE` or `-e ''`: no variable name.
    #[error("-e/--env '{0}': the variable name is empty (use KEY=VALUE)")]
    EnvNoName(String),
    /// `--cwd` is not an absolute path.
    #[error("--cwd '{0}' must be an absolute path in the guest (it starts with /)")]
    CwdNotAbsolute(String),
    /// `--cwd` contains a NUL byte.
    #[error("--cwd contains a NUL byte")]
    CwdNul,
}

/// The encoded argv, environment and working directory of init.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitArgs {
    /// NUL-terminated argv strings back to back.
    pub argv: Vec<u8>,
    /// NUL-terminated `KEY=VALUE` strings back to back.
    pub envp: Vec<u8>,
    /// The working directory, absolute, without NUL.
    pub cwd: Vec<u8>,
}

impl InitArgs {
    /// Encodes and checks `argv`, `env` (`KEY=VALUE` strings) and `cwd`.
    pub fn new(argv: &[OsString], env: &[OsString], cwd: &OsStr) -> Result<Self, InitArgsError> {
        let mut argv_block = Vec::new();
        for (index, arg) in argv.iter().enumerate() {
            let bytes = arg.as_bytes();
            if bytes.contains(&0) {
                return Err(InitArgsError::ArgvNul { index });
            }
            check_strlen(bytes, || format!("Program argument {index}"))?;
            argv_block.extend_from_slice(bytes);
            argv_block.push(0);
        }
        let mut envp = Vec::new();
        for var in env {
            let bytes = var.as_bytes();
            let name = || {
                String::from_utf8_lossy(bytes.split(|&b| b == b'=').next().unwrap_or(b""))
                    .into_owned()
            };
            if bytes.contains(&0) {
                return Err(InitArgsError::EnvNul(name()));
            }
            check_strlen(bytes, || format!("Environment variable {}", name()))?;
            envp.extend_from_slice(bytes);
            envp.push(0);
        }
        let cwd = cwd.as_bytes().to_vec();
        if cwd.contains(&0) {
            return Err(InitArgsError::CwdNul);
        }
        if !cwd.starts_with(b"/") {
            return Err(InitArgsError::CwdNotAbsolute(
                String::from_utf8_lossy(&cwd).into_owned(),
            ));
        }
        check_strlen(&cwd, || "--cwd".to_owned())?;
        let args = InitArgs {
            argv: argv_block,
            envp,
            cwd,
        };
        if args.total_len() as u64 > INIT_ARGS_MAX {
            return Err(InitArgsError::TooLong {
                len: args.total_len(),
                max: INIT_ARGS_MAX,
            });
        }
        Ok(args)
    }

    /// Bytes the three take in the init-arguments area.
    pub fn total_len(&self) -> usize {
        self.argv.len() + self.envp.len() + self.cwd.len()
    }

    /// Guest-physical addresses of the argv block, the environment block and the working
    /// directory: back to back from [`INIT_ARGS_GPA`].
    pub fn gpas(&self) -> [u64; 3] {
        let argv = INIT_ARGS_GPA;
        let envp = argv + self.argv.len() as u64;
        [argv, envp, envp + self.envp.len() as u64]
    }

    /// `(gpa, length)` of the argv block, the environment block and the working directory.
    pub fn placement(&self) -> [(u64, u64); 3] {
        let [a, e, c] = self.gpas();
        [
            (a, self.argv.len() as u64),
            (e, self.envp.len() as u64),
            (c, self.cwd.len() as u64),
        ]
    }

    /// The three back to back, as they go into the init-arguments area.
    pub fn area_bytes(&self) -> Vec<u8> {
        [&self.argv[..], &self.envp, &self.cwd].concat()
    }
}

fn check_strlen(bytes: &[u8], what: impl FnOnce() -> String) -> Result<(), InitArgsError> {
    if bytes.len() >= MAX_ARG_STRLEN {
        return Err(InitArgsError::StringTooLong {
            what: what(),
            len: bytes.len(),
        });
    }
    Ok(())
}

/// Composes init's environment: the host's (`--env-host`, in `host`'s order) or
/// [`DEFAULT_ENV`], then each `-e` in order. `-e KEY=VALUE` sets KEY (replacing an earlier
/// value in place); `-e KEY` copies KEY's value from `host` and is ignored when the host
/// has no KEY (as `docker run -e KEY` does).
pub fn compose_env(
    env_host: bool,
    host: impl IntoIterator<Item = (OsString, OsString)>,
    assignments: &[OsString],
) -> Result<Vec<OsString>, InitArgsError> {
    let host: Vec<(OsString, OsString)> = host.into_iter().collect();
    let mut vars: Vec<(OsString, OsString)> = if env_host {
        host.clone()
    } else {
        DEFAULT_ENV
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.into(), v.into())
            })
            .collect()
    };
    for assignment in assignments {
        let bytes = assignment.as_bytes();
        let (key, value) = match bytes.iter().position(|&b| b == b'=') {
            Some(i) => (
                OsStr::from_bytes(&bytes[..i]).to_owned(),
                Some(OsStr::from_bytes(&bytes[i + 1..]).to_owned()),
            ),
            None => (assignment.clone(), None),
        };
        if key.is_empty() {
            return Err(InitArgsError::EnvNoName(
                assignment.to_string_lossy().into_owned(),
            ));
        }
        let value = match value {
            Some(v) => v,
            None => match host.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => v.clone(),
                None => continue,
            },
        };
        match vars.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => vars.push((key, value)),
        }
    }
    Ok(vars
        .into_iter()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn blocks_keep_empty_strings_and_spaces() {
        let args = InitArgs::new(
            &os(&["/bin/echo", "", "a b", ""]),
            &os(&["A=", "B=c d"]),
            "/tmp".as_ref(),
        )
        .unwrap();
        assert_eq!(args.argv, b"/bin/echo\0\0a b\0\0");
        assert_eq!(args.envp, b"A=\0B=c d\0");
        assert_eq!(args.cwd, b"/tmp");
        let [a, e, c] = args.gpas();
        assert_eq!(a, INIT_ARGS_GPA);
        assert_eq!(e, a + 16);
        assert_eq!(c, e + 9);
        assert_eq!(args.total_len(), 16 + 9 + 4);
    }

    #[test]
    fn nul_bytes_and_relative_cwd_are_refused() {
        let nul = OsString::from_vec(b"a\0b".to_vec());
        assert_eq!(
            InitArgs::new(&[OsString::from("/x"), nul.clone()], &[], "/".as_ref()),
            Err(InitArgsError::ArgvNul { index: 1 })
        );
        let var = OsString::from_vec(b"K=a\0b".to_vec());
        assert_eq!(
            InitArgs::new(&os(&["/x"]), &[var], "/".as_ref()),
            Err(InitArgsError::EnvNul("K".into()))
        );
        assert_eq!(
            InitArgs::new(&os(&["/x"]), &[], "tmp".as_ref()),
            Err(InitArgsError::CwdNotAbsolute("tmp".into()))
        );
        assert_eq!(
            InitArgs::new(&os(&["/x"]), &[], OsStr::from_bytes(b"/a\0")),
            Err(InitArgsError::CwdNul)
        );
        let err = InitArgs::new(&os(&["/x"]), &[], "".as_ref()).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[test]
    fn sizes_are_limited_like_linux() {
        // One string just under MAX_ARG_STRLEN with its NUL passes, one byte more fails.
        let ok = "a".repeat(MAX_ARG_STRLEN - 1);
        assert!(InitArgs::new(&os(&["/x", &ok]), &[], "/".as_ref()).is_ok());
        let long = "a".repeat(MAX_ARG_STRLEN);
        let err = InitArgs::new(&os(&["/x", &long]), &[], "/".as_ref()).unwrap_err();
        assert!(matches!(err, InitArgsError::StringTooLong { len, .. } if len == MAX_ARG_STRLEN));
        assert!(err.to_string().contains("Program argument 1"), "{err}");
        let err = InitArgs::new(
            &os(&["/x"]),
            &[OsString::from(format!("BIG={long}"))],
            "/".as_ref(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("Environment variable BIG"),
            "{err}"
        );
        // Many strings: the area fills up exactly.
        let piece = "b".repeat(4095);
        let n = INIT_ARGS_MAX as usize / 4096;
        let argv: Vec<OsString> = (0..n).map(|_| OsString::from(&piece)).collect();
        let args = InitArgs::new(&argv, &[], "/".as_ref());
        let cwd_len = 1;
        assert_eq!(n * 4096 + cwd_len > INIT_ARGS_MAX as usize, args.is_err());
        let argv: Vec<OsString> = (0..n + 1).map(|_| OsString::from(&piece)).collect();
        let err = InitArgs::new(&argv, &[], "/".as_ref()).unwrap_err();
        assert!(matches!(err, InitArgsError::TooLong { max, .. } if max == INIT_ARGS_MAX));
    }

    fn host() -> Vec<(OsString, OsString)> {
        vec![
            ("HOME".into(), "/home/u".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ]
    }

    #[test]
    fn default_environment_then_assignments() {
        assert_eq!(compose_env(false, host(), &[]).unwrap(), os(&DEFAULT_ENV));
        assert_eq!(
            compose_env(false, host(), &os(&["HOME=/root", "X=1=2", "E=", "X=3"])).unwrap(),
            os(&["PATH=/bin", "HOME=/root", "TERM=dumb", "X=3", "E="])
        );
    }

    #[test]
    fn host_environment_and_copied_names() {
        assert_eq!(
            compose_env(true, host(), &[]).unwrap(),
            os(&["HOME=/home/u", "LANG=C.UTF-8"])
        );
        assert_eq!(
            compose_env(true, host(), &os(&["LANG=POSIX", "N=1"])).unwrap(),
            os(&["HOME=/home/u", "LANG=POSIX", "N=1"])
        );
        // `-e KEY` copies the host's value, and is ignored when the host has none.
        assert_eq!(
            compose_env(false, host(), &os(&["LANG", "MISSING"])).unwrap(),
            os(&["PATH=/bin", "HOME=/", "TERM=dumb", "LANG=C.UTF-8"])
        );
        assert_eq!(
            compose_env(false, host(), &os(&["=x"])),
            Err(InitArgsError::EnvNoName("=x".into()))
        );
    }
}
