//! One projection matrix of the μLM and the kernel that multiplies by it: our Q8_0 kernels
//! ([`crate::q8`]: AVX-512 VNNI, AVX2, NEON dotprod) where the CPU has one, otherwise candle's
//! `QMatMul` (dense f32, or candle's quantized kernels).

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use crate::error::Result;
use crate::q8::Q8Matrix;

pub use crate::q8::KERNEL_ENV;

/// True when Q8_0 matrices will run on [`Q8Matrix`] in this process
/// ([`crate::q8::Q8Kernel::selected`]).
pub fn q8_kernel_enabled() -> bool {
    Q8Matrix::supported()
}

/// A `[out, in]` matrix applied as `x · Wᵀ`.
#[derive(Debug, Clone)]
pub(crate) enum Linear {
    /// candle's matmul (dense or quantized).
    Candle(QMatMul),
    /// Q8_0 weights repacked for a [`crate::q8::Q8Kernel`].
    Q8(Arc<Q8Matrix>),
}

impl Linear {
    /// Dense f32 matrix.
    pub(crate) fn dense(t: Tensor) -> Linear {
        Linear::Candle(QMatMul::Tensor(t))
    }

    /// A quantized matrix: Q8_0 goes to [`Q8Matrix`] when [`q8_kernel_enabled`] and the shape
    /// tiles; F16/F32 QTensors are dequantized by candle to a dense matmul.
    pub(crate) fn quantized(q: Arc<QTensor>) -> Result<Linear> {
        let dims = q.shape().dims().to_vec();
        if q.dtype() == GgmlDType::Q8_0 && dims.len() == 2 && Q8Matrix::shape_ok(dims[0], dims[1]) && q8_kernel_enabled() {
            let bytes = q.data()?;
            return Ok(Linear::Q8(Arc::new(Q8Matrix::from_ggml_q8_0(&bytes, dims[0], dims[1])?)));
        }
        Ok(Linear::Candle(QMatMul::from_arc(q)?))
    }

    /// `x` `[…, in]` → `[…, out]` (f32).
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Candle(m) => Ok(m.forward(x)?),
            Linear::Q8(w) => {
                let x = x.contiguous()?;
                let mut dims = x.dims().to_vec();
                let y = crate::tensor_view::with_f32(&x, |v| w.matmul(v))??;
                if let Some(last) = dims.last_mut() {
                    *last = w.rows();
                }
                Ok(Tensor::from_vec(y, dims, &Device::Cpu)?)
            }
        }
    }
}
