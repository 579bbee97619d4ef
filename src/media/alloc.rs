//! The allocator set-up encoders' output depends on.
//!
//! libx264 0.164's AVX-512 code reads bytes of its own buffers that it never wrote, so what
//! those bytes held changed its output: on an AVX-512 machine a chunk encoded after earlier
//! chunks (their freed memory reused) came out with other bytes than the same chunk in a
//! fresh process, about one run in three, and a resumed or sharded run would have published
//! other bytes than one uninterrupted run. x264 takes all its buffers from `memalign`; the
//! one below, which the process's own definition makes the one every library calls, zeroes
//! them. `tests/x264_heap.rs` encodes the same pictures after leaving the heap full of
//! ones and of zeros.

use std::ffi::c_void;

/// Sets glibc's allocator up for a run (from `media::init`). Each setting yields to its
/// `MALLOC_*` environment variable.
///
/// - Two arenas instead of eight per CPU: a run has a dozen threads (decoder, rungs, audio,
///   storage, S3 requests), and what each freed into an arena of its own stayed mapped:
///   ~25-35 MB of peak RSS on the bench, at the same CPU time.
/// - The mmap threshold pinned at 128 KiB, glibc's starting value, which it would otherwise
///   raise (up to 32 MiB) each time a block that large is freed: freed frames go back to
///   the system at once, ~35 MB less peak RSS on the bench at the same CPU time.
pub(super) fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Keeps the zeroing `memalign` in every binary that links this crate.
        std::hint::black_box(memalign as unsafe extern "C" fn(usize, usize) -> *mut c_void);
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: plain glibc tuning call; a failure (0) leaves the default in place.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        }
    }
}

/// Bytes from which glibc serves a block with fresh pages of its own (see [`tune_allocator`]).
const MMAP_THRESHOLD: i32 = 128 << 10;

/// glibc's `memalign`, with the block zeroed. Defined in the executable, it is the one every
/// shared library's call resolves to (the linker exports a symbol that a library in the link
/// also defines; `LD_DEBUG=bindings` shows libx264's call bound to the executable). Its
/// caller is libx264 (`x264_malloc`, once per buffer when an encoder opens or its frame pool
/// grows); libav, libx265 and SVT-AV1 allocate through `posix_memalign`. Peak RSS on the
/// bench went from ~285 to ~295 MiB (pages x264 never touches are touched), CPU time the same.
///
/// # Safety
///
/// As glibc's: `alignment` a power of two; the block is freed with `free`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub(super) unsafe extern "C" fn memalign(alignment: usize, size: usize) -> *mut c_void {
    // posix_memalign wants a power of two and a multiple of a pointer's size; memalign
    // rounds up to one.
    let alignment = alignment.max(size_of::<*mut c_void>()).next_power_of_two();
    let mut block = std::ptr::null_mut();
    // SAFETY: a valid out-pointer and alignment; glibc's posix_memalign does not call
    // memalign, so this does not recurse.
    if unsafe { libc::posix_memalign(&mut block, alignment, size) } != 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: the block was just allocated with `size` bytes.
    unsafe { std::ptr::write_bytes(block.cast::<u8>(), 0, size) };
    block
}
