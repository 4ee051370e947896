//! A randomised self-test of 2 MiB pages: hundreds of writes, munmaps, mmaps, mprotects,
//! MADV_DONTNEEDs and mremaps over an 8 MiB window, each checked against a model of what
//! every 4 KiB page must hold, with no frame ever mapped twice and none lost at the end.

use alloc::format;
use alloc::vec::Vec;

use super::{call, check, free_frames, mmap, read_u64, scratch_process, write_u64, TestResult};
use super::{map, ANON, P, RW};
use crate::errno::Errno;
use crate::mm::paging::flags;
use crate::mm::vma::{PROT_NONE, PROT_READ, PROT_WRITE};
use crate::syscall::mem as sys;
use crate::syscall::mremap::mremap;
use crate::task::Task;

/// Pages in the window (8 MiB).
const PAGES: u64 = 2048;

/// What a page of the window must be: unmapped, or mapped with a protection and the
/// value of its first word.
type Model = Vec<Option<(u32, u64)>>;

/// xorshift64: a fixed sequence for each seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A range of pages: mostly pieces of a 2 MiB page, sometimes several of them.
    fn range(&mut self) -> (u64, u64) {
        let len = match self.below(6) {
            0 => 1,
            1 => 1 + self.below(16),
            2 | 3 => 512 * (1 + self.below(3)),
            _ => 1 + self.below(1200),
        };
        let start = if self.below(2) == 0 {
            self.below(PAGES / 512) * 512
        } else {
            self.below(PAGES)
        };
        (start, (start + len).min(PAGES))
    }
}

fn verify(p: &Task, base: u64, model: &Model, step: usize) -> TestResult {
    for (i, want) in model.iter().enumerate() {
        let got = read_u64(p, base + i as u64 * P);
        let ok = match want {
            None | Some((PROT_NONE, _)) => got == Err(Errno::EFAULT),
            Some((_, v)) => got == Ok(*v),
        };
        check(
            ok,
            &format!("step {step}: page {i} reads {got:?}, model {want:?}"),
        )?;
    }
    let mut frames = Vec::new();
    p.mm.lock()
        .space
        .for_each_mapped(base, base + PAGES * P, |_, pa, _| frames.push(pa));
    let mapped = frames.len();
    frames.sort_unstable();
    frames.dedup();
    check(
        frames.len() == mapped,
        &format!("step {step}: a frame is mapped twice"),
    )
}

fn run(seed: u64, steps: usize) -> TestResult {
    let before = free_frames();
    {
        let mut proc = scratch_process()?;
        let p = &mut *proc;
        let base = mmap(p, 0, PAGES * P, RW, ANON).map_err(|e| format!("mmap: {e:?}"))?;
        let mut model: Model = alloc::vec![Some((PROT_READ | PROT_WRITE, 0)); PAGES as usize];
        let mut rng = Rng(seed);
        for step in 0..steps {
            let (s, e) = rng.range();
            let (va, len) = (base + s * P, (e - s) * P);
            let pages = s as usize..e as usize;
            let covered = model[pages.clone()].iter().all(Option::is_some);
            match rng.below(9) {
                // A fresh 2 MiB of the window, written: one 2 MiB page.
                8 => {
                    let r = rng.below(PAGES / 512) * 512;
                    let at = base + r * P;
                    let got = mmap(p, at, 512 * P, RW, ANON | map::FIXED);
                    check(got == Ok(at), &format!("step {step}: mmap {got:?}"))?;
                    let v = rng.next();
                    write_u64(p, at + 8 * P, v).map_err(|e| format!("step {step}: {e:?}"))?;
                    let huge = p
                        .mm_mut()
                        .space
                        .translate(at)
                        .is_some_and(|(_, f)| f & flags::HUGE != 0);
                    check(huge, &format!("step {step}: no 2 MiB page at {r}"))?;
                    let r = r as usize;
                    model[r..r + 512].fill(Some((PROT_READ | PROT_WRITE, 0)));
                    model[r + 8] = Some((PROT_READ | PROT_WRITE, v));
                }
                // Writes (twice as likely as the rest): fault in, maybe a 2 MiB page.
                0 | 1 => {
                    for i in pages.clone().step_by(1 + rng.below(64) as usize) {
                        if let Some((prot, v)) = &mut model[i] {
                            if *prot & PROT_WRITE != 0 {
                                *v = rng.next();
                                write_u64(p, base + i as u64 * P, *v)
                                    .map_err(|e| format!("step {step}: write: {e:?}"))?;
                            }
                        }
                    }
                }
                2 => {
                    call(p, sys::munmap, [va, len, 0, 0, 0, 0])
                        .map_err(|e| format!("step {step}: munmap: {e:?}"))?;
                    model[pages].fill(None);
                }
                3 => {
                    let got = mmap(p, va, len, RW, ANON | map::FIXED);
                    check(got == Ok(va), &format!("step {step}: mmap {got:?}"))?;
                    model[pages].fill(Some((PROT_READ | PROT_WRITE, 0)));
                }
                4 => {
                    let prots = [
                        PROT_NONE,
                        PROT_READ,
                        PROT_READ | PROT_WRITE,
                        PROT_READ | PROT_WRITE,
                    ];
                    let prot = prots[rng.below(4) as usize];
                    let got = call(p, sys::mprotect, [va, len, u64::from(prot), 0, 0, 0]);
                    let want = if covered { Ok(0) } else { Err(Errno::ENOMEM) };
                    check(got == want, &format!("step {step}: mprotect {got:?}"))?;
                    if covered {
                        for page in model[pages].iter_mut().flatten() {
                            page.0 = prot;
                        }
                    }
                }
                5 => {
                    let got = call(p, sys::madvise, [va, len, 4, 0, 0, 0]);
                    let want = if covered { Ok(0) } else { Err(Errno::ENOMEM) };
                    check(got == want, &format!("step {step}: DONTNEED {got:?}"))?;
                    for page in model[pages].iter_mut().flatten() {
                        page.1 = 0;
                    }
                }
                _ => {
                    // mremap(MAYMOVE | FIXED) to a place in the window not overlapping.
                    let n = e - s;
                    let mut d = rng.below(PAGES - n + 1);
                    if rng.below(2) == 0 {
                        // Congruent to the source modulo 2 MiB: 2 MiB pages can stay whole.
                        d = (d & !511) + s % 512;
                        if d + n > PAGES {
                            continue;
                        }
                    }
                    if d < e && s < d + n {
                        continue;
                    }
                    let got = call(p, mremap, [va, len, len, 3, base + d * P, 0]);
                    let dest = d as usize..(d + n) as usize;
                    match got {
                        // Nothing at the old address: refused before anything changes.
                        Err(Errno::EFAULT) if model[s as usize].is_none() => {}
                        Ok(at) => {
                            check(
                                at == base + d * P,
                                &format!("step {step}: moved to {at:#x}"),
                            )?;
                            let moved: Vec<_> = model[pages.clone()].to_vec();
                            model[pages].fill(None);
                            model[dest].clone_from_slice(&moved);
                        }
                        // Not one area (a hole or two protections): only the target went.
                        Err(Errno::EFAULT) => {
                            let one_area = covered
                                && model[pages.clone()]
                                    .iter()
                                    .all(|m| m.map(|x| x.0) == model[s as usize].map(|x| x.0));
                            check(
                                !one_area,
                                &format!("step {step}: mremap of one area failed"),
                            )?;
                            model[dest].fill(None);
                        }
                        Err(e) => return Err(format!("step {step}: mremap: {e:?}")),
                    }
                }
            }
            verify(p, base, &model, step)?;
        }
    }
    let after = free_frames();
    check(
        after == before,
        &format!(
            "seed {seed:#x}: {} frames lost, {} gained",
            before.saturating_sub(after),
            after.saturating_sub(before)
        ),
    )
}

pub(super) fn random_ops_match_the_model() -> TestResult {
    run(0x2545_f491_4f6c_dd1d, 250)?;
    run(0x9e37_79b9_7f4a_7c15, 250)
}
