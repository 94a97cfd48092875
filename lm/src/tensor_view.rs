//! Borrowing candle tensors as plain slices for the hand-written kernels ([`crate::q8`],
//! [`crate::attention`], [`crate::swiglu`]). Its own module so that `linear` and `model`
//! both use it without importing each other.

use candle_core::{Storage, Tensor};

use crate::error::{LmError, Result};

/// Borrow a contiguous f32 CPU tensor as a slice for the duration of `f`.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(LmError::InvalidArgument("expected a CPU tensor".into()));
    };
    let data = cpu.as_slice::<f32>()?;
    let (a, b) = layout.contiguous_offsets().ok_or_else(|| LmError::InvalidArgument("expected a contiguous tensor".into()))?;
    Ok(f(&data[a..b]))
}
