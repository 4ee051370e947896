//! `MAP_SHARED` file mappings map the file's own frames (tmpfs pages, see
//! `fs/pages.rs`): a page-table entry is one more owner of the frame ([`super::refcount`]),
//! so stores through any mapping are the file's, and `read`/`write` see and change what
//! every mapping maps. This module undoes such entries when the file lets pages go (a
//! truncation): each address space that maps one loses the entry, so the next access
//! faults and finds the page past the end of the file (SIGBUS), as on Linux.

use alloc::vec::Vec;

use super::vma::Backing;
use super::{refcount, PAGE_SIZE};

/// Unmaps every `MAP_SHARED` file page, in every address space, whose frame is one of
/// `frames` (frames a file dropped while mappings held them). The caller holds no
/// address-space lock.
pub fn unmap_frames(frames: &[u64]) {
    let mut frames = frames.to_vec();
    frames.sort_unstable();
    for mm in crate::task::sched::address_spaces() {
        let mut mm = mm.lock();
        let super::Mm { space, mem } = &mut *mm;
        let mut doomed: Vec<u64> = Vec::new();
        for v in mem.vmas().iter() {
            if !v.flags.shared || !matches!(v.backing, Backing::File { .. }) {
                continue;
            }
            space.for_each_mapped(v.start, v.end, |va, pa, _| {
                if frames.binary_search(&(pa & !(PAGE_SIZE - 1))).is_ok() {
                    // Without room to note it, the page stays mapped (readable past the
                    // end, never freed under the mapping).
                    if doomed.try_reserve(1).is_ok() {
                        doomed.push(va);
                    }
                }
            });
        }
        for va in doomed {
            if let Some(pa) = space.unmap(va) {
                refcount::release(pa);
            }
        }
    }
}
