//! Link arguments for the guest programs: static, non-PIE ELF executables (`ET_EXEC`) at the
//! traditional x86-64 Linux base 0x400000, with a non-executable stack, code on pages of its
//! own, no build-id and no DWARF (symbols stay, for gdb and backtraces), so the images are small
//! and identical from build to build.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only the guest build links these programs; a host `cargo check` must not get lld flags.
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-none") {
        return;
    }
    for arg in [
        "--image-base=0x400000",
        "-z",
        "noexecstack",
        "-z",
        "separate-code",
        "--build-id=none",
        "--no-dynamic-linker",
        "--strip-debug",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
