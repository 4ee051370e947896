//! Running the image's std programs on the host's Linux, as the reference astra is compared
//! with: the same binaries, from the same TAR, in a read-only chroot with the environment
//! astra's kernel gives (`PATH=/bin HOME=/ TERM=dumb`). Used by
//! `tests/tests/std_apps_on_linux.rs` (the scenarios' expectations hold on Linux) and by
//! `astra-bench` (host baselines).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment astra's kernel starts programs with.
pub const GUEST_ENV: [&str; 3] = ["PATH=/bin", "HOME=/", "TERM=dumb"];

/// The program astra runs when none is named.
pub const DEFAULT_PROGRAM: &str = "/init";

/// Unpacks `tar` into the existing directory `into` with the host's `tar`, keeping modes,
/// symbolic links and mtimes.
pub fn extract(tar: &Path, into: &Path) -> Result<(), String> {
    let output = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(into)
        .output()
        .map_err(|e| format!("cannot run `tar` to unpack {}: {e}", tar.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`tar -xf {} -C {}` failed ({}): {}",
            tar.display(),
            into.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Whether `elf` is a static position-independent x86-64 executable (`ET_DYN` without a
/// `PT_INTERP`): what stock `cargo build --target x86_64-unknown-linux-musl` makes, and what
/// runs unchanged on Linux. The guest-std programs (`ET_EXEC`, `int 0x80` with x86-64
/// numbers) are not.
pub fn is_static_pie(elf: &[u8]) -> bool {
    const ET_DYN: u16 = 3;
    const EM_X86_64: u16 = 62;
    const PT_INTERP: u32 = 3;
    // Offsets come from the file: an end past usize::MAX is simply out of range.
    let u16_at = |at: usize| {
        elf.get(at..at.checked_add(2)?)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at.checked_add(4)?)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at.checked_add(8)?).map(|b| {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            u64::from_le_bytes(word)
        })
    };
    // 64-bit, little-endian.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    if u16_at(16) != Some(ET_DYN) || u16_at(18) != Some(EM_X86_64) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff.saturating_add(i.saturating_mul(usize::from(phentsize)));
        matches!(u32_at(at), Some(kind) if kind != PT_INTERP)
    })
}

/// The program and arguments a scenario runs, if it makes sense on Linux: its `astra-vmm`
/// arguments may set `--timeout` and `--mem` (meaningless there), but no kernel parameters
/// or other VM settings. No `--` means [`DEFAULT_PROGRAM`] with no arguments.
pub fn scenario_program(vmm_args: &[String]) -> Option<(String, Vec<String>)> {
    let mut args = vmm_args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--" => {
                let program = args.next()?.clone();
                return Some((program, args.cloned().collect()));
            }
            "--timeout" | "--mem" | "-e" | "--env" | "--cwd" => {
                args.next()?;
            }
            a if a.starts_with("--timeout=") || a.starts_with("--mem=") => {}
            _ => return None,
        }
    }
    Some((DEFAULT_PROGRAM.to_string(), Vec::new()))
}

/// The `-e KEY=VALUE` assignments and the `--cwd` of a scenario's `astra-vmm` arguments
/// (before its `--`), for [`chroot_command_in`].
pub fn scenario_env_and_cwd(vmm_args: &[String]) -> (Vec<String>, Option<String>) {
    let mut env = Vec::new();
    let mut cwd = None;
    let mut args = vmm_args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--" => break,
            "-e" | "--env" => env.extend(args.next().cloned()),
            "--cwd" => cwd = args.next().cloned(),
            _ => {}
        }
    }
    (env, cwd)
}

/// Size of the tmpfs holding the writable layer of the root.
const UPPER_SIZE: &str = "256m";
/// Size of the tmpfs instances on `/tmp` and `/run` (small, so filling one is quick).
const TMPFS_SIZE: &str = "64m";

/// A command that runs `program args...` in a root made like astra's, with [`GUEST_ENV`]
/// as its whole environment: `unshare --mount` (a private mount namespace); `root` made
/// read-only (a bind mount onto itself) and used as the lower layer of an overlay whose
/// upper layer is a tmpfs on `layers` (an empty directory), so the program may change
/// the root without touching `root`; tmpfs instances on its `/tmp` and `/run`; a `/dev`
/// with the host's null, zero, full, random and urandom and the links fd, stdin, stdout
/// and stderr (as udev makes them), and `/proc`, as astra has; then
/// `chroot` into the overlay. Needs root. Returns the program to spawn and its arguments.
pub fn chroot_command(
    root: &Path,
    layers: &Path,
    program: &str,
    args: &[String],
) -> (PathBuf, Vec<String>) {
    chroot_command_in(root, layers, &[], "/", program, args)
}

/// [`chroot_command`] with `env` (`KEY=VALUE`s) added to [`GUEST_ENV`] (as astra's `-e`
/// does) and `cwd` as the working directory in the root (astra's `--cwd`).
pub fn chroot_command_in(
    root: &Path,
    layers: &Path,
    env: &[String],
    cwd: &str,
    program: &str,
    args: &[String],
) -> (PathBuf, Vec<String>) {
    // $0 is the root, $1 the layers directory, $2 the working directory, $3 the number of
    // assignments; then the assignments, the program and its arguments. unshare (without
    // namespaces, for --root and --wd: a chroot and a chdir) is looked up before the
    // environment is replaced (PATH=/bin may not reach it).
    let script = format!(
        r#"set -e
PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"
enter=$(command -v unshare)
root="$0"; layers="$1"; cwd="$2"; count="$3"; shift 3
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o size={UPPER_SIZE} tmpfs "$layers"
mkdir "$layers/upper" "$layers/work" "$layers/merged"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$layers/upper,workdir=$layers/work" "$layers/merged"
for d in tmp run; do
    mkdir -p "$layers/merged/$d"
    mount -t tmpfs -o size={TMPFS_SIZE} tmpfs "$layers/merged/$d"
done
mkdir -p "$layers/merged/dev" "$layers/merged/proc"
mount -t tmpfs -o size=1m tmpfs "$layers/merged/dev"
for n in null zero full random urandom; do
    touch "$layers/merged/dev/$n"
    mount --bind "/dev/$n" "$layers/merged/dev/$n"
done
ln -s /proc/self/fd "$layers/merged/dev/fd"
ln -s /proc/self/fd/0 "$layers/merged/dev/stdin"
ln -s /proc/self/fd/1 "$layers/merged/dev/stdout"
ln -s /proc/self/fd/2 "$layers/merged/dev/stderr"
mount -t proc proc "$layers/merged/proc"
# env's arguments: the assignments, then `unshare --root --wd`, the program and its
# arguments (built after the original list, which is then dropped).
total=$#; i=0
for a do
    [ "$i" -eq "$count" ] && set -- "$@" "$enter" --root="$layers/merged" --wd="$cwd"
    set -- "$@" "$a"; i=$((i+1))
done
shift "$total"
exec env -i PATH=/bin HOME=/ TERM=dumb "$@""#
    );
    debug_assert!(script.contains(&GUEST_ENV.join(" ")));
    let mut full = vec![
        "--mount".to_string(),
        "--propagation".to_string(),
        "private".to_string(),
        "--".to_string(),
        "/bin/sh".to_string(),
        "-c".to_string(),
        script,
        root.display().to_string(),
        layers.display().to_string(),
        cwd.to_string(),
        env.len().to_string(),
    ];
    full.extend(env.iter().cloned());
    full.push(program.to_string());
    full.extend(args.iter().cloned());
    (PathBuf::from("unshare"), full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A minimal ELF header with one program header of type `ptype`.
    fn elf(e_type: u16, ptype: u32) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        f[16..18].copy_from_slice(&e_type.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        f[64..68].copy_from_slice(&ptype.to_le_bytes());
        f
    }

    #[test]
    fn static_pie_detection() {
        assert!(is_static_pie(&elf(3, 1)));
        assert!(!is_static_pie(&elf(3, 3)), "PT_INTERP: dynamically linked");
        assert!(!is_static_pie(&elf(2, 1)), "ET_EXEC");
        let mut truncated = elf(3, 1);
        truncated.truncate(66);
        assert!(!is_static_pie(&truncated));
        assert!(!is_static_pie(b"#!/bin/sh\n"));
        let mut huge_phoff = elf(3, 1);
        huge_phoff[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!is_static_pie(&huge_phoff));
    }

    #[test]
    fn scenario_programs() {
        assert_eq!(
            scenario_program(&strings(&["--", "/bin/cat", "/x"])),
            Some(("/bin/cat".into(), strings(&["/x"])))
        );
        assert_eq!(
            scenario_program(&strings(&[
                "--mem",
                "128M",
                "--timeout",
                "5",
                "--",
                "/bin/a"
            ])),
            Some(("/bin/a".into(), vec![]))
        );
        assert_eq!(
            scenario_program(&strings(&["--timeout=5"])),
            Some(("/init".into(), vec![]))
        );
        assert_eq!(scenario_program(&[]), Some(("/init".into(), vec![])));
        assert_eq!(
            scenario_program(&strings(&["--cmdline", "astra.test", "--", "/bin/true"])),
            None
        );
        assert_eq!(
            scenario_program(&strings(&["--strace", "--", "/bin/a"])),
            None
        );
        assert_eq!(scenario_program(&strings(&["--"])), None);
        let args = strings(&[
            "-e", "A=1", "--cwd", "/etc", "--env", "B=2", "--", "/bin/x", "-e", "C",
        ]);
        assert_eq!(
            scenario_program(&args),
            Some(("/bin/x".into(), strings(&["-e", "C"])))
        );
        assert_eq!(
            scenario_env_and_cwd(&args),
            (strings(&["A=1", "B=2"]), Some("/etc".into()))
        );
        assert_eq!(
            scenario_program(&strings(&["--env-host", "--", "/bin/x"])),
            None
        );
        assert_eq!(scenario_program(&strings(&["--mem"])), None);
    }

    #[test]
    fn chroot_command_passes_root_program_and_args() {
        let (program, args) = chroot_command(
            Path::new("/tmp/root"),
            Path::new("/tmp/layers"),
            "/bin/cat",
            &strings(&["a", "b c"]),
        );
        assert_eq!(program, PathBuf::from("unshare"));
        assert_eq!(&args[..4], ["--mount", "--propagation", "private", "--"]);
        assert_eq!(
            &args[args.len() - 7..],
            ["/tmp/root", "/tmp/layers", "/", "0", "/bin/cat", "a", "b c"]
        );
        let (_, args) = chroot_command_in(
            Path::new("/r"),
            Path::new("/l"),
            &strings(&["A=1", "B=x y"]),
            "/etc",
            "/bin/env",
            &[],
        );
        assert_eq!(
            &args[args.len() - 7..],
            ["/r", "/l", "/etc", "2", "A=1", "B=x y", "/bin/env"]
        );
        assert!(args[6].contains("remount,bind,ro"));
        assert!(args[6].contains("-t overlay"));
    }
}
