//! `init`: the program the kernel runs when none is named. Prints a banner with the
//! kernel's name and release (`uname`) and the time since boot, lists `/bin`, exits 0.

use std::process::ExitCode;

use astra_std_apps::{error_text, sys};

fn main() -> ExitCode {
    let kernel = match sys::uname() {
        Ok(uts) => format!("{} {} {}", uts.sysname, uts.release, uts.machine),
        Err(e) => format!("(uname failed: {})", error_text(&e)),
    };
    let uptime = match sys::monotonic_since_boot() {
        Ok(up) => format!("{:.3} s", up.as_secs_f64()),
        Err(e) => format!("(clock_gettime failed: {})", error_text(&e)),
    };
    println!(
        "astra init: pid {}, kernel {kernel}, up {uptime}",
        std::process::id()
    );
    let mut names = match std::fs::read_dir("/bin") {
        Ok(entries) => match entries
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<String>, _>>()
        {
            Ok(names) => names,
            Err(e) => {
                eprintln!("init: reading /bin: {}", error_text(&e));
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("init: /bin: {}", error_text(&e));
            return ExitCode::FAILURE;
        }
    };
    names.sort();
    println!(
        "astra init: /bin has {} programs: {}",
        names.len(),
        names.join(" ")
    );
    ExitCode::SUCCESS
}
