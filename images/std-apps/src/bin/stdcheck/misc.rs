//! Arguments, environment, process id, threads, panics, formatting and standard streams.

use std::io::Write;
use std::panic;
use std::path::Path;
use std::sync::{Arc, Mutex};

use astra_std_apps::checks::{ensure, panic_message, CheckResult, Checks};
use astra_std_apps::sys;

/// Runs the checks of this module.
pub fn run(checks: &mut Checks<impl Write>) {
    checks.run("args", args);
    checks.run("env_vars", env_vars);
    checks.run("current_dir", current_dir);
    checks.run("process_id", process_id);
    checks.run("stdout_stderr", stdout_stderr);
    checks.run("float_format", float_format);
    checks.run("catch_unwind", catch_unwind);
    checks.run("thread_spawn", thread_spawn);
}

fn args() -> CheckResult {
    let args: Vec<String> = std::env::args().collect();
    let args_os: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    ensure(args == args_os, || {
        format!("args {args:?} vs args_os {args_os:?}")
    })?;
    let name = args.first().ok_or("argv is empty")?;
    ensure(
        Path::new(name).file_name() == Some("stdcheck".as_ref()),
        || format!("argv[0] is {name:?}"),
    )?;
    Ok(format!("argv = {args:?}"))
}

fn env_vars() -> CheckResult {
    let path = std::env::var("PATH").map_err(|e| format!("PATH: {e}"))?;
    ensure(!path.is_empty(), || "PATH is empty".into())?;
    ensure(
        std::env::vars().any(|(k, v)| k == "PATH" && v == path),
        || "env::vars() does not list PATH".into(),
    )?;
    ensure(std::env::var("STDCHECK_UNSET").is_err(), || {
        "STDCHECK_UNSET is set".into()
    })?;
    std::env::set_var("STDCHECK_VAR", "value=with=equals");
    let got = std::env::var("STDCHECK_VAR").map_err(|e| format!("after set_var: {e}"))?;
    ensure(got == "value=with=equals", || {
        format!("set_var/var gave {got:?}")
    })?;
    std::env::remove_var("STDCHECK_VAR");
    ensure(std::env::var_os("STDCHECK_VAR").is_none(), || {
        "remove_var did not".into()
    })?;
    Ok(format!(
        "PATH={path}, {} variables",
        std::env::vars_os().count()
    ))
}

fn current_dir() -> CheckResult {
    let dir = std::env::current_dir().map_err(|e| format!("current_dir: {e}"))?;
    ensure(dir.is_absolute(), || {
        format!("current_dir {dir:?} is relative")
    })?;
    Ok(dir.display().to_string())
}

fn process_id() -> CheckResult {
    let id = std::process::id();
    ensure(id > 0 && id == std::process::id(), || {
        format!("process::id() = {id}")
    })?;
    // SAFETY: getpid takes no arguments and touches no memory.
    let raw = unsafe { sys::syscall3(sys::nr::GETPID, 0, 0, 0) };
    ensure(raw == id as isize, || {
        format!("getpid() = {raw}, process::id() = {id}")
    })?;
    Ok(format!("pid {id}"))
}

fn stdout_stderr() -> CheckResult {
    let mut out = std::io::stdout().lock();
    out.write_all(b"stdcheck: this line goes to stdout\n")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    std::io::stderr()
        .write_all(b"stdcheck: this line goes to stderr\n")
        .map_err(|e| format!("stderr: {e}"))?;
    Ok(String::new())
}

fn float_format() -> CheckResult {
    let cases: [(String, &str); 9] = [
        (format!("{}", 0.1 + 0.2), "0.30000000000000004"),
        (format!("{:.3}", std::f64::consts::PI), "3.142"),
        (format!("{:e}", 1234.5f64), "1.2345e3"),
        (format!("{}", 1e21f64), "1000000000000000000000"),
        (format!("{:e}", f64::MAX.sqrt()), "1.3407807929942596e154"),
        (format!("{:?}", 1.0f32 / 3.0), "0.33333334"),
        (format!("{}", -0.0f64), "-0"),
        (format!("{} {}", f64::NAN, f64::NEG_INFINITY), "NaN -inf"),
        (format!("{:>8.2}|", 2.0f64.powf(0.5)), "    1.41|"),
    ];
    for (got, want) in &cases {
        ensure(got == want, || {
            format!("formatted {got:?}, expected {want:?}")
        })?;
    }
    let parsed: f64 = "2.5e-3".parse().map_err(|e| format!("parse: {e}"))?;
    ensure(parsed == 0.0025, || {
        format!("\"2.5e-3\" parsed as {parsed}")
    })?;
    Ok(String::new())
}

fn catch_unwind() -> CheckResult {
    // A hook of our own records the message instead of printing it, and proves hooks run.
    let seen = Arc::new(Mutex::new(None::<String>));
    let recorder = Arc::clone(&seen);
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| l.file().to_string())
            .unwrap_or_default();
        let message = panic_message(info.payload());
        if let Ok(mut slot) = recorder.lock() {
            *slot = Some(format!("{message} at {location}"));
        }
    }));
    let result = panic::catch_unwind(|| {
        let value = std::hint::black_box(42);
        if value == 42 {
            panic!("boom {value}");
        }
        value
    });
    panic::set_hook(previous);
    let payload = match result {
        Ok(v) => return Err(format!("the closure returned {v} instead of panicking")),
        Err(payload) => panic_message(&*payload),
    };
    ensure(payload == "boom 42", || format!("payload {payload:?}"))?;
    let hooked = seen.lock().map_err(|_| "hook mutex poisoned")?.clone();
    let hooked = hooked.ok_or("the panic hook did not run")?;
    ensure(
        hooked.starts_with("boom 42 at ") && hooked.contains("misc.rs"),
        || format!("hook saw {hooked:?}"),
    )?;
    Ok(hooked)
}

fn thread_spawn() -> CheckResult {
    // A spawned thread must really run and hand its value back (tests/scenarios.txt runs
    // the full std threads check, /bin/threads).
    let spawned = std::thread::Builder::new()
        .name("stdcheck-worker".into())
        .spawn(|| 6 * 7);
    match spawned {
        Ok(handle) => {
            let value = handle
                .join()
                .map_err(|p| format!("the thread panicked: {}", panic_message(&*p)))?;
            ensure(value == 42, || format!("the thread returned {value}"))?;
            Ok("spawned and joined".into())
        }
        Err(e) => Err(format!("spawn failed: {e}")),
    }
}
