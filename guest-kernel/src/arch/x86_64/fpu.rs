//! User programs' floating-point and vector state: XSAVE (x87, SSE, AVX and AVX-512) on
//! CPUs that have it, FXSAVE (x87 and SSE) otherwise.
//!
//! At boot [`init`] turns on `CR4.OSXSAVE` and sets XCR0 to the components the CPU
//! offers among x87, SSE, AVX and AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM), so programs see
//! AVX in CPUID (`OSXSAVE`) and `xgetbv`. Saves and restores name exactly those
//! components (the requested-feature mask), never "all": a PVM host keeps its own XCR0
//! while the guest runs (measured here: 0x600e7, AMX tiles included, whatever the guest
//! set), and CPUID sizes the image for the guest's choice only. Every task's state is an [`FpuState`]: an image
//! in XSAVE's standard format (or FXSAVE's), saved and restored whole at each context
//! switch and written into signal frames the way Linux writes them. The kernel itself is
//! built without SSE and never touches these registers.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::arch::asm;
use core::ptr::NonNull;

use super::cpu;

/// XCR0 components: x87 and SSE (always together).
const X87_SSE: u64 = 0b11;
/// AVX (the upper halves of YMM).
const AVX: u64 = 1 << 2;
/// AVX-512: opmask, ZMM_Hi256, Hi16_ZMM (all three or none).
const AVX512: u64 = 0b111 << 5;
/// CR4.OSXSAVE.
const CR4_OSXSAVE: u64 = 1 << 18;

/// Offset of MXCSR in an FXSAVE or XSAVE image.
pub const MXCSR: usize = 24;
/// Offset of MXCSR_MASK.
const MXCSR_MASK: usize = 28;
/// Size of the legacy (FXSAVE) region; the XSAVE header follows it.
pub const LEGACY_SIZE: usize = 512;
/// Size of the XSAVE header.
const HEADER_SIZE: usize = 64;
/// Offset of the software-reserved bytes of the legacy region (Linux's `sw_reserved`).
pub const SW_RESERVED: usize = 464;

/// What the kernel chose at boot.
#[derive(Clone, Copy, Debug)]
struct Config {
    /// XCR0, or 0 when the CPU has no XSAVE (FXSAVE is used).
    xcr0: u64,
    /// Bytes of a state image.
    size: usize,
    /// The MXCSR bits the CPU accepts.
    mxcsr_mask: u32,
}

static CONFIG: spin::Once<Config> = spin::Once::new();

fn config() -> Config {
    *CONFIG.get().expect("fpu::init runs at boot")
}

fn xsetbv(xcr: u32, value: u64) {
    // SAFETY: called once at boot with CR4.OSXSAVE set and components CPUID offers,
    // x87 and SSE included, as XSETBV requires.
    unsafe {
        asm!("xsetbv", in("ecx") xcr, in("eax") value as u32, in("edx") (value >> 32) as u32,
            options(nomem, nostack))
    };
}

/// Reads an extended control register (XCR0: the enabled components).
pub fn xgetbv(xcr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only called with CR4.OSXSAVE set; reading XCR0 has no side effects.
    unsafe { asm!("xgetbv", in("ecx") xcr, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The components to enable out of those the CPU supports.
fn choose_xcr0(supported: u64) -> u64 {
    if supported & X87_SSE != X87_SSE {
        return 0;
    }
    let mut xcr0 = X87_SSE;
    if supported & AVX != 0 {
        xcr0 |= AVX;
        if supported & AVX512 == AVX512 {
            xcr0 |= AVX512;
        }
    }
    xcr0
}

/// Enables XSAVE with the components the CPU has, or settles for FXSAVE. Call once at
/// boot, after SSE is enabled (`arch::enable_sse`) and the heap is up.
pub fn init() {
    init_config();
    INITIAL.call_once(|| {
        FpuState::initial().unwrap_or_else(|| panic!("out of memory at boot (FPU state)"))
    });
}

fn init_config() {
    CONFIG.call_once(|| {
        let has_xsave = cpu::cpuid(0, 0)[0] >= 0xd && cpu::cpuid(1, 0)[2] & (1 << 26) != 0;
        let xcr0 = if has_xsave {
            let leaf = cpu::cpuid(0xd, 0);
            choose_xcr0(u64::from(leaf[0]) | (u64::from(leaf[3]) << 32))
        } else {
            0
        };
        let size = if xcr0 != 0 {
            // SAFETY: the CPU has XSAVE (CPUID.1:ECX.XSAVE), so CR4.OSXSAVE exists.
            unsafe { cpu::write_cr4(cpu::read_cr4() | CR4_OSXSAVE) };
            xsetbv(0, xcr0);
            // EBX of leaf 0xd: the size XSAVE needs for the components enabled now.
            (cpu::cpuid(0xd, 0)[1] as usize).max(LEGACY_SIZE + HEADER_SIZE)
        } else {
            LEGACY_SIZE
        };
        let mut probe = [0u8; LEGACY_SIZE + 16];
        let at = (probe.as_ptr() as usize).next_multiple_of(16) - probe.as_ptr() as usize;
        // SAFETY: 512 bytes at a 16-byte aligned address inside `probe`.
        unsafe { asm!("fxsave64 [{}]", in(reg) probe[at..].as_mut_ptr(), options(nostack)) };
        let mask = u32::from_le_bytes([
            probe[at + MXCSR_MASK],
            probe[at + MXCSR_MASK + 1],
            probe[at + MXCSR_MASK + 2],
            probe[at + MXCSR_MASK + 3],
        ]);
        Config {
            xcr0,
            size,
            mxcsr_mask: if mask == 0 { 0xffbf } else { mask },
        }
    });
}

/// The enabled XSAVE components (XCR0), or 0 when only FXSAVE is used.
pub fn xfeatures() -> u64 {
    config().xcr0
}

/// Bytes of a state image (what a signal frame holds, without Linux's trailing magic).
pub fn state_size() -> usize {
    config().size
}

/// A task's saved FPU/SSE/AVX state: an XSAVE image in standard format (or an FXSAVE
/// image), 64-byte aligned, [`state_size`] bytes.
pub struct FpuState {
    ptr: NonNull<u8>,
}

// SAFETY: the image is plain memory owned by the state.
unsafe impl Send for FpuState {}
// SAFETY: shared references only read the image.
unsafe impl Sync for FpuState {}

/// The init state, made once at boot.
static INITIAL: spin::Once<FpuState> = spin::Once::new();

/// Loads the init state (what a program and a signal handler start with).
pub fn load_initial() {
    if let Some(state) = INITIAL.get() {
        state.restore();
    }
}

impl FpuState {
    fn layout() -> Layout {
        // The size is at least 512 and the alignment a power of two.
        Layout::from_size_align(state_size(), 64).unwrap_or(Layout::new::<[u8; 512]>())
    }

    fn zeroed() -> Option<Self> {
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(Self::layout()) })?;
        Some(FpuState { ptr })
    }

    /// The state a program starts with (Linux's init state): x87 control word 0x37f,
    /// MXCSR 0x1f80, every register zero, no component in use. `None` without memory.
    pub fn initial() -> Option<Self> {
        let mut state = Self::zeroed()?;
        let bytes = state.bytes_mut();
        bytes[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        bytes[MXCSR..MXCSR + 4].copy_from_slice(&0x1f80u32.to_le_bytes());
        Some(state)
    }

    /// A copy of the state the CPU holds now (the current task's). `None` without memory.
    pub fn capture() -> Option<Self> {
        let mut state = Self::zeroed()?;
        state.save();
        Some(state)
    }

    /// A copy; `None` without memory.
    pub fn try_clone(&self) -> Option<Self> {
        let mut copy = Self::zeroed()?;
        copy.bytes_mut().copy_from_slice(self.bytes());
        Some(copy)
    }

    /// The image.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `state_size()` bytes allocated in `zeroed`, owned by self.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), state_size()) }
    }

    /// The image, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, borrowed mutably.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), state_size()) }
    }

    /// Saves the CPU's state into the image.
    pub fn save(&mut self) {
        let xcr0 = xfeatures();
        let p = self.ptr.as_ptr();
        if xcr0 != 0 {
            // SAFETY: the image is 64-byte aligned and as large as CPUID says XSAVE
            // needs for the components asked for (`xcr0`, see `init`); CR4.OSXSAVE is set.
            unsafe {
                asm!("xsave64 [{}]", in(reg) p, in("eax") xcr0 as u32, in("edx") (xcr0 >> 32) as u32,
                    options(nostack))
            };
        } else {
            // SAFETY: 512 bytes, 16-byte aligned (64, in fact).
            unsafe { asm!("fxsave64 [{}]", in(reg) p, options(nostack)) };
        }
    }

    /// Loads the image into the CPU. The image must be one the kernel made ([`save`],
    /// [`initial`]) or [`sanitize`]d: XRSTOR faults on malformed images.
    ///
    /// [`save`]: FpuState::save
    /// [`initial`]: FpuState::initial
    /// [`sanitize`]: FpuState::sanitize
    pub fn restore(&self) {
        let xcr0 = xfeatures();
        let p = self.ptr.as_ptr();
        if xcr0 != 0 {
            // SAFETY: a well-formed standard-format image (see above) of the right size;
            // components absent from XSTATE_BV are set to their init state.
            unsafe {
                asm!("xrstor64 [{}]", in(reg) p, in("eax") xcr0 as u32, in("edx") (xcr0 >> 32) as u32,
                    options(nostack))
            };
        } else {
            // SAFETY: 512 bytes, aligned, with a valid MXCSR (see above).
            unsafe { asm!("fxrstor64 [{}]", in(reg) p, options(nostack)) };
        }
    }

    /// Makes an image that came from user memory safe to load, as Linux does for a
    /// signal frame: MXCSR without reserved bits, and with XSAVE, a standard-format
    /// header whose XSTATE_BV names only enabled components (`xfeatures`, the components
    /// the frame says it holds; those not named start in their init state). `legacy_only`
    /// images (a frame without Linux's XSAVE magic) restore x87/SSE and reset the rest.
    pub fn sanitize(&mut self, xfeatures: u64, legacy_only: bool) {
        let cfg = config();
        let bytes = self.bytes_mut();
        let mxcsr = u32::from_le_bytes([
            bytes[MXCSR],
            bytes[MXCSR + 1],
            bytes[MXCSR + 2],
            bytes[MXCSR + 3],
        ]) & cfg.mxcsr_mask;
        bytes[MXCSR..MXCSR + 4].copy_from_slice(&mxcsr.to_le_bytes());
        if cfg.xcr0 == 0 {
            return;
        }
        let header = &mut bytes[LEGACY_SIZE..LEGACY_SIZE + HEADER_SIZE];
        let claimed = u64::from_le_bytes(header[..8].try_into().unwrap_or_default());
        let keep = if legacy_only {
            X87_SSE
        } else {
            claimed & xfeatures
        };
        header.fill(0);
        header[..8].copy_from_slice(&(keep & cfg.xcr0).to_le_bytes());
        if legacy_only {
            // Whatever followed the legacy region was not an XSAVE image.
            bytes[LEGACY_SIZE + HEADER_SIZE..].fill(0);
        }
    }

    /// The x87 control and status words and MXCSR (for a floating-point signal's
    /// `si_code`).
    pub fn status(&self) -> (u16, u16, u32) {
        let b = self.bytes();
        (
            u16::from_le_bytes([b[0], b[1]]),
            u16::from_le_bytes([b[2], b[3]]),
            u32::from_le_bytes([b[MXCSR], b[MXCSR + 1], b[MXCSR + 2], b[MXCSR + 3]]),
        )
    }
}

impl Drop for FpuState {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with the same layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_enabled_together() {
        assert_eq!(choose_xcr0(0b1), 0);
        assert_eq!(choose_xcr0(0b11), 0b11);
        assert_eq!(choose_xcr0(0b111), 0b111);
        // MPX (3, 4) and PKRU (9) stay off; AVX-512 only whole and with AVX.
        assert_eq!(choose_xcr0(0x2ff), 0xe7);
        assert_eq!(choose_xcr0(0b0110_0111), 0b111);
        assert_eq!(choose_xcr0(0b1110_0011), 0b11);
    }
}
