//! The pool of large cache buffers ([`Recycle`]) that the gated layer's forward passes reuse,
//! apart from the loops that fill them.

use std::sync::Mutex;

use super::*;

/// Large cache buffers the last backward passes released, for the next forward pass of the
/// same size to reuse: the operating system hands out fresh pages one page fault per 4 KiB
/// (27 ms for the 72 MB cache of `Nalu(1024 → 1024)` on a batch of 4096, measured here),
/// and a training loop asks for the same sizes every step. Holds at most `BIN_MAX`
/// buffers; smaller ones are left to the allocator, which recycles them itself.
pub trait Recycle: Sized + 'static {
    /// The process-wide pool of this element type's buffers.
    fn bin() -> &'static Mutex<Vec<Vec<Self>>>;
}

impl Recycle for f32 {
    fn bin() -> &'static Mutex<Vec<Vec<f32>>> {
        static BIN: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
        &BIN
    }
}

impl Recycle for f64 {
    fn bin() -> &'static Mutex<Vec<Vec<f64>>> {
        static BIN: Mutex<Vec<Vec<f64>>> = Mutex::new(Vec::new());
        &BIN
    }
}

/// A buffer of `len` values, recycled when one is at hand (its contents are stale: every
/// caller overwrites all of it), zeroed otherwise.
pub(super) fn take<F: FastFloat + Recycle>(len: usize) -> Vec<F> {
    if len >= BIN_MIN_LEN {
        let mut bin = F::bin().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = bin.iter().position(|v| v.len() == len) {
            return bin.swap_remove(i);
        }
    }
    vec![F::zero(); len]
}

/// Frees every kept buffer; returns how many bytes that gives back.
pub fn release_all() -> usize {
    fn drain<F: Recycle>() -> usize {
        let mut bin = F::bin().lock().unwrap_or_else(|e| e.into_inner());
        let bytes = bin.iter().map(|v| v.capacity() * size_of::<F>()).sum();
        *bin = Vec::new();
        bytes
    }
    drain::<f32>() + drain::<f64>()
}

/// Hands a cache buffer back for [`take`] to reuse, dropping the oldest beyond [`BIN_MAX`].
pub fn recycle<F: Recycle>(buffer: Vec<F>) {
    if buffer.len() >= BIN_MIN_LEN {
        let mut bin = F::bin().lock().unwrap_or_else(|e| e.into_inner());
        bin.push(buffer);
        if bin.len() > BIN_MAX {
            bin.remove(0);
        }
    }
}
