//! Memory for packed matmul panels that stay for many calls (a model's
//! weights), on transparent huge pages where the OS offers them.
//!
//! At small batches a weight streams from DRAM for every batch: MiniLM's
//! 42 MB of Linear weights pass once per sentence at batch size 1. With 4 KiB
//! pages that stream takes a TLB miss every 4 KiB; on 2 MiB pages it ran
//! ≈ 25 % faster here. Linux gives huge pages to an anonymous mapping marked
//! `MADV_HUGEPAGE` (the default "madvise" mode), so panels of 512 KiB and
//! more get their own 2 MiB-aligned mapping (a 590 KB MiniLM weight then
//! occupies one 2 MiB page: memory traded for ≈ 30 % at batch size 1);
//! smaller ones and other systems use the heap.

use crate::backend::cpu::alloc::alloc;
use crate::error::Error;

/// The huge-page size; panels of a quarter of it and more get a mapping.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Zeroed f32 memory that lives as long as a packed weight.
#[derive(Debug)]
pub(crate) struct PanelMemory {
    backing: Backing,
}

#[derive(Debug)]
enum Backing {
    Heap(Vec<f32>),
    #[cfg(target_os = "linux")]
    Mapped {
        /// Where the mapping starts and how long it is (for `munmap`).
        base: *mut libc::c_void,
        mapped: usize,
        /// The 2 MiB-aligned floats inside it.
        floats: *mut f32,
        len: usize,
    },
}

// SAFETY: the mapping is owned by this value alone; `&PanelMemory` only
// hands out shared slices and `&mut` exclusive ones, as a Vec would.
unsafe impl Send for PanelMemory {}
// SAFETY: as above.
unsafe impl Sync for PanelMemory {}

impl PanelMemory {
    /// `len` zeroed floats.
    pub(crate) fn zeroed(len: usize) -> Result<PanelMemory, Error> {
        #[cfg(target_os = "linux")]
        if let Some(bytes) = len.checked_mul(4).filter(|&b| b >= HUGE_PAGE / 4)
            && let Some(memory) = PanelMemory::map(len, bytes)
        {
            return Ok(memory);
        }
        Ok(PanelMemory {
            backing: Backing::Heap(alloc::<f32>(len)?),
        })
    }

    /// A private anonymous mapping (zero-filled by the kernel) with room to
    /// start on a huge-page boundary, marked for huge pages; `None` when the
    /// kernel refuses (the heap is used instead).
    #[cfg(target_os = "linux")]
    fn map(len: usize, bytes: usize) -> Option<PanelMemory> {
        let mapped = bytes.checked_add(HUGE_PAGE)?;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let skip = (HUGE_PAGE - base as usize % HUGE_PAGE) % HUGE_PAGE;
        // SAFETY: `skip < HUGE_PAGE`, so `skip + bytes ≤ mapped`.
        let start = unsafe { base.cast::<u8>().add(skip) };
        // Advice only: without huge pages the memory works the same.
        // SAFETY: the range lies inside the mapping made above.
        unsafe {
            libc::madvise(
                start.cast(),
                bytes.next_multiple_of(HUGE_PAGE).min(mapped - skip),
                libc::MADV_HUGEPAGE,
            )
        };
        Some(PanelMemory {
            backing: Backing::Mapped {
                base,
                mapped,
                floats: start.cast(),
                len,
            },
        })
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        match &self.backing {
            Backing::Heap(v) => v,
            #[cfg(target_os = "linux")]
            // SAFETY: `len` floats inside the live mapping, zero-filled or written.
            Backing::Mapped { floats, len, .. } => unsafe {
                std::slice::from_raw_parts(*floats, *len)
            },
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        match &mut self.backing {
            Backing::Heap(v) => v,
            #[cfg(target_os = "linux")]
            // SAFETY: as above, and `&mut self` makes the borrow exclusive.
            Backing::Mapped { floats, len, .. } => unsafe {
                std::slice::from_raw_parts_mut(*floats, *len)
            },
        }
    }
}

impl Drop for PanelMemory {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Backing::Mapped { base, mapped, .. } = self.backing {
            // SAFETY: the mapping made in `map`, unmapped once, here.
            unsafe { libc::munmap(base, mapped) };
        }
    }
}
