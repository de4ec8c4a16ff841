//! The process allocator: the system allocator, except that blocks of
//! [`DIRECT_MAP_BYTES_MIN`] or more are mapped and unmapped directly.
//!
//! Chunk buffers (1 MiB + 4 KiB, the bulk of a node's memory) are bounded
//! by the PUT admission budget, but glibc would carve them out of its
//! per-thread arenas and keep freed ones there, so the process's resident
//! memory would grow past the budget by whatever the arenas once held.
//! Mapping them directly makes resident memory follow the buffers in use;
//! the per-core chunk pool keeps the map/unmap rate low.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks at least this large bypass the arenas.
pub const DIRECT_MAP_BYTES_MIN: usize = 512 * 1024;

const PAGE_BYTES: usize = 4096;

pub struct ShoalAlloc;

// SAFETY: small blocks go to `System` unchanged; large ones are anonymous
// private mappings, which are page aligned (so any alignment up to a page
// is met) and zero-filled, and are unmapped with the same rounded length.
unsafe impl GlobalAlloc for ShoalAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < DIRECT_MAP_BYTES_MIN || layout.align() > PAGE_BYTES {
            return System.alloc(layout);
        }
        let len = layout.size().next_multiple_of(PAGE_BYTES);
        let ptr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if ptr == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            ptr.cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() < DIRECT_MAP_BYTES_MIN || layout.align() > PAGE_BYTES {
            return System.dealloc(ptr, layout);
        }
        let len = layout.size().next_multiple_of(PAGE_BYTES);
        let unmapped = libc::munmap(ptr.cast(), len);
        debug_assert_eq!(unmapped, 0, "munmap of a block we mapped");
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let small = layout.size() < DIRECT_MAP_BYTES_MIN && new_size < DIRECT_MAP_BYTES_MIN;
        if small && layout.align() <= PAGE_BYTES {
            return System.realloc(ptr, layout, new_size);
        }
        // Crossing the threshold (or staying above it): move the bytes.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new_ptr = self.alloc(new_layout);
        if !new_ptr.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new_ptr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_blocks_round_trip() {
        let a = ShoalAlloc;
        for (size, align) in [
            (16, 8),
            (DIRECT_MAP_BYTES_MIN, 4096),
            ((1 << 20) + 4096, 4096),
            (3 << 20, 64),
        ] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero layout; freed below with the same layout.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                p.write_bytes(0xAB, size);
                let grown = a.realloc(p, layout, size * 2);
                assert!(!grown.is_null());
                assert_eq!(*grown.add(size - 1), 0xAB);
                a.dealloc(grown, Layout::from_size_align(size * 2, align).unwrap());
            }
        }
    }
}
