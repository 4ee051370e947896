//! `execve` and `execveat`: replacing the caller's program.
//!
//! Everything that can fail is done before the point of no return: the arguments are
//! copied within Linux's limits ([`crate::loader::args`]), the file is found and checked
//! (regular, an execute bit), `#!` scripts name their interpreter ([`crate::loader::script`],
//! at most four levels as Linux's `binfmt_script`), and the program is loaded into a new
//! address space. Then the other threads end, the new address space replaces the old one,
//! close-on-exec descriptors close, handled signals go back to their defaults, and the
//! thread enters the new program with fresh registers, FPU state and TLS.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use super::fs::{fd_vnode, read_path_or_empty, start_for, walker, AT_EMPTY_PATH};
use super::{Ctx, Errno, SysResult, RLIMIT_STACK};
use crate::arch::trap::TrapFrame;
use crate::fs::inode::{FileType, InodeRef};
use crate::fs::vfs::{self, Vnode};
use crate::loader::exec::ExecError;
use crate::loader::{args, script};
use crate::task::{sched, Task};

/// `AT_SYMLINK_NOFOLLOW`.
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;

/// execve(path, argv, envp)
pub fn execve(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_execve(ctx, super::fs::AT_FDCWD as u64, a[0], a[1], a[2], 0)
}

/// execveat(dirfd, path, argv, envp, flags)
pub fn execveat(ctx: &mut Ctx<'_>, a: [u64; 6]) -> SysResult {
    do_execve(ctx, a[0], a[1], a[2], a[3], a[4] as u32)
}

fn exec_errno(e: &ExecError) -> Errno {
    match e {
        ExecError::Elf(_) | ExecError::BadLayout => Errno::ENOEXEC,
        ExecError::NoMemory => Errno::ENOMEM,
        ExecError::Stack(_) => Errno::E2BIG,
        ExecError::Io => Errno::EIO,
        ExecError::BelowMinAddr(_) => Errno::EPERM,
    }
}

/// The executable file `path` names (from `dirfd`), checked as `open_exec` does.
fn find_file(ctx: &Ctx<'_>, dirfd: u64, path: &str, flags: u32) -> Result<InodeRef, Errno> {
    let vnode = if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        fd_vnode(ctx, dirfd)?
    } else {
        let start = start_for(ctx, dirfd, path)?;
        let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
        Vnode::Node(walker(ctx.task).lookup(&start, path, vfs::follow(follow))?)
    };
    let node = vnode.node().cloned().ok_or(Errno::EACCES)?;
    match node.file_type() {
        FileType::Regular => {}
        FileType::Symlink => return Err(Errno::ELOOP),
        _ => return Err(Errno::EACCES),
    }
    let meta = walker(ctx.task).metadata(&Vnode::Node(node.clone()));
    if meta.mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(node)
}

fn do_execve(
    ctx: &mut Ctx<'_>,
    dirfd: u64,
    path_va: u64,
    argv_va: u64,
    envp_va: u64,
    flags: u32,
) -> SysResult {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path_or_empty(ctx, path_va)?;
    let stack_limit = ctx.task.process.limits.lock().get(RLIMIT_STACK as u64)?.cur;
    let mut exec_args = args::copy_args(
        |va, buf| ctx.read_user(va, buf),
        argv_va,
        envp_va,
        path.len(),
        stack_limit,
    )?;
    if exec_args.argv.is_empty() {
        // Linux (since 5.18) gives a program run with an empty argv an argv[0] of "".
        exec_args.argv.push(Vec::new());
    }
    let mut file_path = path.clone();
    let mut dirfd = dirfd;
    let mut flags = flags;
    let mut depth = 0;
    let node = loop {
        let node = find_file(ctx, dirfd, &file_path, flags)?;
        let source = crate::fs::regular::map_source(&node);
        let mut head = [0u8; script::BINPRM_BUF_SIZE];
        let n = source.read_at(0, &mut head).map_err(|_| Errno::EIO)?;
        if n < 2 || &head[..2] != b"#!" {
            break node;
        }
        depth += 1;
        if depth > script::MAX_INTERPRETER_DEPTH {
            return Err(Errno::ELOOP);
        }
        let shebang = script::parse(&head[..n])?;
        let interpreter =
            String::from_utf8(shebang.interpreter.to_vec()).map_err(|_| Errno::ENOENT)?;
        // The script is passed by the name it was run with (Linux's bprm->filename).
        let script_name: Vec<u8> = if file_path.is_empty() {
            alloc::format!("/dev/fd/{}", dirfd as i32).into_bytes()
        } else {
            file_path.clone().into_bytes()
        };
        script::rewrite_args(&mut exec_args, &shebang, &script_name)?;
        file_path = interpreter;
        dirfd = super::fs::AT_FDCWD as u64;
        flags = 0;
    };
    let argv: Vec<&[u8]> = exec_args.argv.iter().map(|a| a.as_slice()).collect();
    let envp: Vec<&[u8]> = exec_args.envp.iter().map(|a| a.as_slice()).collect();
    let source = crate::fs::regular::map_source(&node);
    let loaded = crate::loader::exec::load(source, &argv, &envp, path.as_bytes())
        .map_err(|e| exec_errno(&e))?;
    let entry = loaded.entry;
    let rsp = loaded.rsp;
    let mm = crate::task::new_mm(loaded.space, loaded.mem).map_err(|_| Errno::ENOMEM)?;
    // A descriptor table shared with another process (CLONE_FILES) is copied first.
    let files = if Arc::strong_count(&ctx.task.files) > 1 {
        Some(ctx.task.files.lock().try_clone()?)
    } else {
        None
    };
    // What /proc/[pid]/{comm,cmdline,environ} show (nothing below can fail).
    crate::fs::procinfo::record_exec(ctx.task.pid(), path.as_bytes(), &argv, &envp);
    // The program's name for /proc/self/exe and reports: where the file is, without
    // symlinks (Linux's exe link names the file, not the path used).
    let name = walker(ctx.task)
        .path_of(&Vnode::Node(node.clone()))
        .unwrap_or(path);
    // The point of no return.
    end_other_threads(ctx.task);
    let old = core::mem::replace(&mut ctx.task.mm, Arc::new(Mutex::new(mm)));
    sched::reload_address_space(ctx.task);
    drop(old);
    if let Some(files) = files {
        ctx.task.files = Arc::new(Mutex::new(files));
    }
    ctx.task.files.lock().close_on_exec();
    ctx.task.signals.reset_for_exec();
    ctx.task.saved_sigmask = None;
    ctx.task.thread = Default::default();
    ctx.task.thread.load_segment_bases();
    ctx.task.rseq_notify = false;
    ctx.task.set_name(name);
    crate::arch::fpu::load_initial();
    ctx.task.process.release_vfork();
    *ctx.frame = TrapFrame::new_user(entry, rsp);
    ctx.frame.return_by_iret();
    Ok(0)
}

/// Ends every other thread of the caller's process and waits until they are gone (Linux's
/// `de_thread`).
fn end_other_threads(task: &mut Task) {
    let me = task.tid;
    loop {
        let others: Vec<u32> = sched::threads_of(task.pid())
            .into_iter()
            .filter(|&t| t != me)
            .collect();
        if others.is_empty() {
            return;
        }
        for tid in others {
            sched::with_other_task(tid, |t| {
                t.exit_request.get_or_insert(0);
                sched::signal_wake(t);
            });
        }
        sched::schedule();
    }
}
