//! Q8_0 matrix × f32 activations: the decode and prefill matmuls of a Q8_0 μLM (the
//! deployment format; paper §on-device inference), with one kernel per CPU family:
//! - [`Q8Kernel::Avx512Vnni`] (`avx512.rs`): x86-64 with AVX-512 F/BW/VNNI;
//! - [`Q8Kernel::Avx2`] (`avx2.rs`): x86-64 with AVX2/FMA/F16C (most laptops, AMD Zen 1–3);
//! - [`Q8Kernel::NeonDotprod`] (`neon.rs`): aarch64 with dotprod (Cortex-A76 boards).
//!
//! Why our own kernel: candle's x86 Q8_0 path quantizes activations per 256 values (so the
//! reduction length must be a multiple of 256, which 512-8's SwiGLU width 1408 is not), keeps
//! only 2 dependency chains per 16 outputs in the decode GEMV and re-quantizes activations
//! with scalar `roundf`. Here:
//! - weights are repacked once at load into 16-row tiles, each 32-value block stored as
//!   `[8 groups][16 rows][4 bytes]` offset by +128 (u8), so one `vpdpbusd` computes 4 products
//!   for 16 output rows against 4 broadcast activation bytes (AVX2 and NEON read the same
//!   layout as 2 or 4 row groups and undo the offset with one xor);
//! - activations are quantized per 32 values like llama.cpp's `quantize_row_q8_0` (f16 scale,
//!   round to nearest), so results follow llama.cpp's Q8_0 × Q8_0 numerics; the +128 offset is
//!   removed with each activation block's integer sum;
//! - a weight tile is reused for several activation rows while it is in L1 (prefill), and
//!   the AVX-512 decode GEMV (one row) splits each block over two independent accumulators.
//!
//! Which kernel runs is decided at run time ([`Q8Kernel::selected`]; `FIRSTWORD_Q8_KERNEL`
//! overrides it for A/B benchmarks). Where none applies the model keeps candle's kernels.
//! [`Q8Matrix::matmul_reference`] is the same integer arithmetic in scalar code and the
//! definition of the result: every kernel is bit-identical to it (tests compare, on aarch64
//! under qemu-user).

use half::f16;

use crate::error::{LmError, Result};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

/// Values per Q8_0 block (GGML format spec).
pub const BLOCK: usize = 32;
/// Output rows per weight tile (one 512-bit register of i32 sums).
pub const TILE: usize = 16;
/// Activation rows processed against one weight tile at a time (prefill).
pub const MT: usize = 8;
/// Bytes of one GGML Q8_0 block: f16 scale + 32 × i8.
const Q8_0_BYTES: usize = 2 + BLOCK;

/// A `[n, k]` Q8_0 matrix repacked for the SIMD kernels (`n` output rows, `k` inputs).
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    n: usize,
    k: usize,
    /// The kernel [`Q8Matrix::matmul`] runs (chosen at repacking).
    kernel: Option<Q8Kernel>,
    /// `[n/16 tiles][k/32 blocks][8 groups][16 rows][4]` quantized weights + 128.
    qs: Vec<u8>,
    /// `[n/16 tiles][k/32 blocks][16 rows]` f16 scales (raw bits).
    d: Vec<u16>,
}

/// Activations `[m, k]` quantized per 32 values (see [`quantize_acts`]).
#[derive(Debug, Clone, Default)]
pub struct QActs {
    m: usize,
    k: usize,
    /// `[m, k]` quantized values.
    q: Vec<i8>,
    /// `[m, k/32]` block scales (f16-rounded, as f32).
    d: Vec<f32>,
    /// `[m, k/32]` −128 × Σ q of the block: the integer sums start here, which removes the
    /// weights' +128 offset.
    c: Vec<i32>,
}

impl Q8Matrix {
    /// True when this process runs Q8_0 matrices on one of these kernels
    /// ([`Q8Kernel::selected`] is `Some`).
    pub fn supported() -> bool {
        Q8Kernel::selected().is_some()
    }

    /// True when a `[n, k]` matrix fits the tiling (n a multiple of 16, k of 32).
    pub fn shape_ok(n: usize, k: usize) -> bool {
        n > 0 && k > 0 && n % TILE == 0 && k % BLOCK == 0
    }

    /// Repack raw GGML Q8_0 bytes of a row-major `[n, k]` matrix (n·k/32 blocks of 34 bytes)
    /// for the [`Q8Kernel::selected`] kernel.
    /// Errors: a shape that does not tile, or a byte length that does not match the shape.
    pub fn from_ggml_q8_0(bytes: &[u8], n: usize, k: usize) -> Result<Q8Matrix> {
        let mut m = Self::repack(bytes, n, k)?;
        m.kernel = Q8Kernel::selected();
        Ok(m)
    }

    /// [`Q8Matrix::from_ggml_q8_0`] for a given kernel (tests and A/B comparisons).
    /// Errors: as `from_ggml_q8_0`, or a kernel this CPU cannot run.
    pub fn with_kernel(bytes: &[u8], n: usize, k: usize, kernel: Q8Kernel) -> Result<Q8Matrix> {
        if !kernel.available() {
            return Err(LmError::InvalidArgument(format!("this CPU cannot run the {} Q8_0 kernel", kernel.name())));
        }
        let mut m = Self::repack(bytes, n, k)?;
        m.kernel = Some(kernel);
        Ok(m)
    }

    /// The kernel [`Q8Matrix::matmul`] runs on (None: no SIMD kernel for this CPU).
    pub fn kernel(&self) -> Option<Q8Kernel> {
        self.kernel
    }

    fn repack(bytes: &[u8], n: usize, k: usize) -> Result<Q8Matrix> {
        if !Self::shape_ok(n, k) {
            return Err(LmError::InvalidArgument(format!("Q8_0 kernel needs n % {TILE} == 0 and k % {BLOCK} == 0, got [{n}, {k}]")));
        }
        let kb = k / BLOCK;
        if bytes.len() != n * kb * Q8_0_BYTES {
            return Err(LmError::InvalidArgument(format!(
                "Q8_0 data of [{n}, {k}] must be {} bytes, got {}",
                n * kb * Q8_0_BYTES,
                bytes.len()
            )));
        }
        let mut qs = vec![0u8; n * k];
        let mut d = vec![0u16; n * kb];
        for row in 0..n {
            let (t, r) = (row / TILE, row % TILE);
            for b in 0..kb {
                let blk = &bytes[(row * kb + b) * Q8_0_BYTES..][..Q8_0_BYTES];
                d[(t * kb + b) * TILE + r] = u16::from_le_bytes([blk[0], blk[1]]);
                let tile_block = (t * kb + b) * BLOCK * TILE;
                for g in 0..BLOCK / 4 {
                    for j in 0..4 {
                        let w = blk[2 + g * 4 + j] as i8;
                        qs[tile_block + (g * TILE + r) * 4 + j] = (w as i16 + 128) as u8;
                    }
                }
            }
        }
        Ok(Q8Matrix { n, k, kernel: None, qs, d })
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Inputs per row.
    pub fn cols(&self) -> usize {
        self.k
    }

    /// `x` `[m, k]` (row-major f32) → `[m, n]`, on the SIMD kernel. Output tiles are split over
    /// the current rayon pool's threads when it has more than one.
    /// Errors: `x.len()` not a multiple of k, or a CPU without the needed features.
    pub fn matmul(&self, x: &[f32]) -> Result<Vec<f32>> {
        let acts = quantize_acts(x, self.k)?;
        let mut out = vec![0f32; acts.m * self.n];
        self.matmul_quantized(&acts, &mut out)?;
        Ok(out)
    }

    /// [`Q8Matrix::matmul`] on already-quantized activations, writing `[m, n]` into `out`.
    pub fn matmul_quantized(&self, acts: &QActs, out: &mut [f32]) -> Result<()> {
        self.check(acts, out)?;
        let Some(kernel) = self.kernel.filter(|k| k.available()) else {
            return Err(LmError::InvalidArgument("no Q8_0 SIMD kernel for this CPU (AVX-512 VNNI, AVX2 or NEON dotprod)".into()));
        };
        let tiles = self.n / TILE;
        let threads = rayon::current_num_threads().min(tiles).max(1);
        let out_ptr = SendPtr(out.as_mut_ptr());
        let run = |t0: usize, t1: usize| {
            let p = out_ptr;
            for t in t0..t1 {
                // SAFETY: the kernel's CPU features were checked above; every call writes only
                // the columns of tile t.
                unsafe { kernel.tile(self, acts, t, p.0) };
            }
        };
        if threads == 1 {
            run(0, tiles);
        } else {
            let per = tiles.div_ceil(threads);
            rayon::scope(|s| {
                for i in 1..threads {
                    let run = &run;
                    s.spawn(move |_| run((i * per).min(tiles), ((i + 1) * per).min(tiles)));
                }
                run(0, per.min(tiles));
            });
        }
        Ok(())
    }

    /// The kernel's arithmetic in scalar code (same integer sums, same f32 operation order), for
    /// tests and as the definition of the result. `[m, k]` → `[m, n]`.
    pub fn matmul_reference(&self, acts: &QActs) -> Result<Vec<f32>> {
        let mut out = vec![0f32; acts.m * self.n];
        self.check(acts, &out)?;
        let kb = self.k / BLOCK;
        for i in 0..acts.m {
            for row in 0..self.n {
                let (t, r) = (row / TILE, row % TILE);
                let mut acc = 0f32;
                for b in 0..kb {
                    let tile_block = (t * kb + b) * BLOCK * TILE;
                    let mut isum = acts.c[i * kb + b];
                    for g in 0..BLOCK / 4 {
                        for j in 0..4 {
                            let w = self.qs[tile_block + (g * TILE + r) * 4 + j] as i32;
                            isum += w * acts.q[i * self.k + b * BLOCK + g * 4 + j] as i32;
                        }
                    }
                    let dw = f16::from_bits(self.d[(t * kb + b) * TILE + r]).to_f32();
                    let f = isum as f32;
                    acc = f.mul_add(dw * acts.d[i * kb + b], acc);
                }
                out[i * self.n + row] = acc;
            }
        }
        Ok(out)
    }

    fn check(&self, acts: &QActs, out: &[f32]) -> Result<()> {
        if acts.k != self.k || out.len() != acts.m * self.n {
            return Err(LmError::InvalidArgument(format!(
                "Q8_0 matmul: activations [{}, {}] and output of {} values for a [{}, {}] matrix",
                acts.m,
                acts.k,
                out.len(),
                self.n,
                self.k
            )));
        }
        Ok(())
    }
}

/// Quantize `x` `[m, k]` per 32 values as llama.cpp's `quantize_row_q8_0` does: d = max|x|/127
/// (stored rounded to f16), q = round(x / d). Errors: k not a multiple of 32, or `x.len()`
/// not a multiple of k.
pub fn quantize_acts(x: &[f32], k: usize) -> Result<QActs> {
    if k == 0 || k % BLOCK != 0 || x.len() % k != 0 {
        return Err(LmError::InvalidArgument(format!(
            "activations of {} values do not split into rows of {k} (a multiple of {BLOCK})",
            x.len()
        )));
    }
    let m = x.len() / k;
    let kb = k / BLOCK;
    let mut a = QActs { m, k, q: vec![0; m * k], d: vec![0.0; m * kb], c: vec![0; m * kb] };
    #[cfg(target_arch = "x86_64")]
    if Q8Kernel::Avx512Vnni.available() {
        // SAFETY: features checked; the buffers were sized for x above.
        unsafe { avx512::quantize(x, &mut a) };
        return Ok(a);
    }
    quantize_scalar(x, &mut a);
    Ok(a)
}

/// The definition of [`quantize_acts`] (the SIMD version performs the same f32 operations).
fn quantize_scalar(x: &[f32], a: &mut QActs) {
    for (blk, vals) in x.chunks_exact(BLOCK).enumerate() {
        let amax = vals.iter().fold(0f32, |mx, v| mx.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (j, &v) in vals.iter().enumerate() {
            // round-half-even, as the SIMD quantizers of llama.cpp do. |v·id| ≤ 127 for
            // finite blocks; the clamp matters only when it is not (a subnormal max makes
            // id infinite) and a NaN product is 0 (Rust's float → int cast), so q always
            // fits an i8 and the block sum cannot overflow.
            let q = (v * id).round_ties_even().clamp(-127.0, 127.0) as i32;
            a.q[blk * BLOCK + j] = q as i8;
            sum += q;
        }
        a.d[blk] = f16::from_f32(d).to_f32();
        a.c[blk] = -128 * sum;
    }
}

/// The SIMD kernels of [`Q8Matrix`], one per CPU family (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Q8Kernel {
    /// x86-64 AVX-512 F/BW/VNNI (`vpdpbusd`).
    Avx512Vnni,
    /// x86-64 AVX2 + FMA + F16C (`vpmaddubsw` with the sign trick).
    Avx2,
    /// aarch64 NEON with dotprod (`sdot`).
    NeonDotprod,
}

impl Q8Kernel {
    /// Every kernel, fastest first where a CPU has several.
    pub const ALL: [Q8Kernel; 3] = [Q8Kernel::Avx512Vnni, Q8Kernel::Avx2, Q8Kernel::NeonDotprod];

    /// The name `FIRSTWORD_Q8_KERNEL` and reports use: `avx512-vnni`, `avx2`, `neon-dotprod`.
    pub fn name(self) -> &'static str {
        match self {
            Q8Kernel::Avx512Vnni => "avx512-vnni",
            Q8Kernel::Avx2 => "avx2",
            Q8Kernel::NeonDotprod => "neon-dotprod",
        }
    }

    /// True when this CPU has the kernel's features.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Q8Kernel::Avx512Vnni => {
                std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Q8Kernel::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "aarch64")]
            Q8Kernel::NeonDotprod => std::arch::is_aarch64_feature_detected!("dotprod"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best kernel this CPU has, in [`Q8Kernel::ALL`] order, if any.
    pub fn detect() -> Option<Q8Kernel> {
        Q8Kernel::ALL.into_iter().find(|k| k.available())
    }

    /// The kernel this process uses: `FIRSTWORD_Q8_KERNEL` (`candle` → None, a kernel name →
    /// that kernel when the CPU has it, else None), otherwise [`Q8Kernel::detect`].
    pub fn selected() -> Option<Q8Kernel> {
        match std::env::var(KERNEL_ENV) {
            Ok(v) if v == "candle" => None,
            Ok(v) if !v.is_empty() => Q8Kernel::ALL.into_iter().find(|k| k.name() == v && k.available()),
            _ => Q8Kernel::detect(),
        }
    }

    /// Tile `t` of `w` against all rows of `acts`.
    ///
    /// # Safety
    /// [`Q8Kernel::available`] must be true, `out` must hold `acts.m × w.n` values and the
    /// shapes must have passed [`Q8Matrix::check`].
    unsafe fn tile(self, w: &Q8Matrix, acts: &QActs, t: usize, out: *mut f32) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Q8Kernel::Avx512Vnni => avx512::tile(w, acts, t, out),
            #[cfg(target_arch = "x86_64")]
            Q8Kernel::Avx2 => avx2::tile(w, acts, t, out),
            #[cfg(target_arch = "aarch64")]
            Q8Kernel::NeonDotprod => neon::tile(w, acts, t, out),
            #[allow(unreachable_patterns)]
            _ => unreachable!("{} is not built for this architecture", self.name()),
        }
    }
}

/// Environment variable that selects the Q8_0 kernel for A/B benchmarks: `candle` (candle's
/// kernels), or one of [`Q8Kernel::name`]; unset: [`Q8Kernel::detect`].
pub const KERNEL_ENV: &str = "FIRSTWORD_Q8_KERNEL";

/// A raw output pointer that may cross to pool threads: each thread writes disjoint tiles.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: only used for writes to disjoint column ranges while the owning slice is borrowed.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::SplitMix64;

    /// GGML Q8_0 bytes of a random `[n, k]` matrix, built by hand from the format spec.
    fn random_q8_0(n: usize, k: usize, seed: u64) -> Vec<u8> {
        let mut rng = SplitMix64::new(seed);
        let mut out = Vec::with_capacity(n * k / BLOCK * Q8_0_BYTES);
        for _ in 0..n * k / BLOCK {
            out.extend_from_slice(&f16::from_f32(0.001 + 0.01 * rng.next_f64() as f32).to_bits().to_le_bytes());
            for _ in 0..BLOCK {
                out.push((rng.next_u64() % 255) as u8 as i8 as u8); // -128..=126 as two's complement
            }
        }
        out
    }

    fn random_x(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..len).map(|_| rng.next_normal() as f32).collect()
    }

    /// Dequantized f32 product: the exact function the quantized product approximates.
    fn dense_product(bytes: &[u8], n: usize, k: usize, x: &[f32]) -> Vec<f32> {
        let m = x.len() / k;
        let kb = k / BLOCK;
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for row in 0..n {
                let mut s = 0f64;
                for b in 0..kb {
                    let blk = &bytes[(row * kb + b) * Q8_0_BYTES..][..Q8_0_BYTES];
                    let d = f16::from_bits(u16::from_le_bytes([blk[0], blk[1]])).to_f32() as f64;
                    for j in 0..BLOCK {
                        s += d * (blk[2 + j] as i8) as f64 * x[i * k + b * BLOCK + j] as f64;
                    }
                }
                out[i * n + row] = s as f32;
            }
        }
        out
    }

    /// The kernels this CPU runs; the tests below compare each with the scalar definition.
    fn kernels_here() -> Vec<Q8Kernel> {
        let ks: Vec<Q8Kernel> = Q8Kernel::ALL.into_iter().filter(|k| k.available()).collect();
        if ks.is_empty() {
            eprintln!("skipped: this CPU has no lm::q8 kernel (the model uses candle's kernels)");
        }
        ks
    }

    #[test]
    fn every_kernel_matches_the_scalar_reference_bit_for_bit_and_dense_closely() {
        for kernel in kernels_here() {
            // 1 (decode), 4, 8 and 11 activation rows (full blocks of every kernel's row
            // tiling plus remainders); k = 1408 is 512-8's SwiGLU width, which candle's fast
            // path cannot take. The weights include -128, the value the sign trick must survive.
            for (n, k, m) in [(48, 1408, 1), (32, 512, 8), (64, 96, 11), (16, 32, 4), (16, 64, 3)] {
                let bytes = random_q8_0(n, k, 7);
                let w = Q8Matrix::with_kernel(&bytes, n, k, kernel).unwrap();
                assert_eq!(w.kernel(), Some(kernel));
                let x = random_x(m * k, 9);
                let acts = quantize_acts(&x, k).unwrap();
                let simd = w.matmul(&x).unwrap();
                let scalar = w.matmul_reference(&acts).unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&simd), bits(&scalar), "{}: [{n}, {k}] × {m} rows", kernel.name());
                let dense = dense_product(&bytes, n, k, &x);
                let scale = dense.iter().fold(0f32, |a, v| a.max(v.abs()));
                for (a, b) in simd.iter().zip(&dense) {
                    // 8-bit activations: error ≈ 1/254 of each block's max, summed over blocks.
                    assert!((a - b).abs() <= 0.02 * scale, "{}: {a} vs dense {b} (max |y| {scale})", kernel.name());
                }
            }
        }
    }

    #[test]
    fn extreme_weights_and_activations_do_not_saturate() {
        // All weights -128 or 127 against activations ±127: the largest pair sums the AVX2
        // sign trick forms (128·127·2) and the largest integer block sums.
        for kernel in kernels_here() {
            let (n, k) = (16, 64);
            let mut bytes = Vec::new();
            for row in 0..n {
                for b in 0..k / BLOCK {
                    bytes.extend_from_slice(&f16::from_f32(1.0).to_bits().to_le_bytes());
                    for j in 0..BLOCK {
                        bytes.push(if (row + b + j) % 3 == 0 { 0x80 } else { 127 });
                    }
                }
            }
            let x: Vec<f32> = (0..2 * k).map(|i| if i % 5 == 0 { -127.0 } else { 127.0 }).collect();
            let w = Q8Matrix::with_kernel(&bytes, n, k, kernel).unwrap();
            let acts = quantize_acts(&x, k).unwrap();
            assert!(acts.q.iter().all(|q| q.abs() == 127));
            let simd = w.matmul(&x).unwrap();
            assert_eq!(simd, w.matmul_reference(&acts).unwrap(), "{}", kernel.name());
            assert_eq!(simd, dense_product(&bytes, n, k, &x), "{}: exact in this case", kernel.name());
        }
    }

    #[test]
    fn a_kernel_this_cpu_lacks_is_an_error_that_names_it() {
        for kernel in Q8Kernel::ALL.into_iter().filter(|k| !k.available()) {
            let e = Q8Matrix::with_kernel(&[0; 34 * 16], 16, 32, kernel).unwrap_err().to_string();
            assert!(e.contains(kernel.name()), "{e}");
        }
        // The selection never names a kernel the CPU cannot run.
        assert!(Q8Kernel::selected().is_none_or(|k| k.available()));
    }

    #[test]
    fn simd_quantization_equals_the_scalar_definition() {
        let x = random_x(4 * 1408, 5);
        let simd = quantize_acts(&x, 1408).unwrap();
        let mut scalar = QActs { m: 4, k: 1408, q: vec![0; x.len()], d: vec![0.0; x.len() / BLOCK], c: vec![0; x.len() / BLOCK] };
        quantize_scalar(&x, &mut scalar);
        assert_eq!((simd.q, simd.d, simd.c), (scalar.q, scalar.d, scalar.c));
    }

    #[test]
    fn non_finite_activations_follow_the_scalar_definition() {
        let mut x = random_x(5 * BLOCK, 9);
        x[0] = f32::INFINITY;
        x[BLOCK + 3] = f32::NAN;
        x[2 * BLOCK + 5] = f32::NEG_INFINITY;
        x[2 * BLOCK + 6] = f32::NAN;
        x[3 * BLOCK..4 * BLOCK].fill(f32::NAN);
        // A subnormal scale: 1/d overflows to inf.
        x[4 * BLOCK..].fill(0.0);
        x[4 * BLOCK] = 1e-38;
        x[4 * BLOCK + 1] = -5e-39;
        let simd = quantize_acts(&x, BLOCK).unwrap();
        let mut scalar = QActs { m: 5, k: BLOCK, q: vec![0; x.len()], d: vec![0.0; 5], c: vec![0; 5] };
        quantize_scalar(&x, &mut scalar);
        let bits = |d: &[f32]| d.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!((&simd.q, bits(&simd.d), &simd.c), (&scalar.q, bits(&scalar.d), &scalar.c));
        assert!(scalar.q[BLOCK..2 * BLOCK].iter().any(|&q| q != 0), "finite values around a NaN survive");
        assert!(scalar.q[4 * BLOCK] == 127 && scalar.q[4 * BLOCK + 1] == -127);
    }

    #[test]
    fn two_threads_give_the_same_result() {
        for kernel in kernels_here() {
            let (n, k) = (160, 256);
            let w = Q8Matrix::with_kernel(&random_q8_0(n, k, 3), n, k, kernel).unwrap();
            let x = random_x(5 * k, 4);
            let one = w.matmul(&x).unwrap();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            let two = pool.install(|| w.matmul(&x)).unwrap();
            assert_eq!(one, two, "{}", kernel.name());
        }
    }

    #[test]
    fn activation_quantization_follows_llama_cpp() {
        // One block with max 127 → d = 1 exactly; values round to nearest, ties to even.
        let mut x = vec![0f32; BLOCK];
        x[0] = 127.0;
        x[1] = -50.2;
        x[2] = 1.5;
        x[3] = 2.5;
        let a = quantize_acts(&x, BLOCK).unwrap();
        assert_eq!(&a.q[..4], &[127, -50, 2, 2]);
        assert_eq!(a.d[0], 1.0);
        assert_eq!(a.c[0], -128 * (127 - 50 + 2 + 2));
        // The scale is stored rounded to f16, as in a GGML Q8_0 block.
        let b = quantize_acts(&[0.3; BLOCK], BLOCK).unwrap();
        assert_eq!(b.d[0], f16::from_f32(0.3 / 127.0).to_f32());
        // An all-zero block has d = 0 and zero values, not NaN.
        let z = quantize_acts(&[0.0; BLOCK], BLOCK).unwrap();
        assert!(z.q.iter().all(|&q| q == 0) && z.d[0] == 0.0);
    }

    #[test]
    fn bad_shapes_are_errors_that_name_them() {
        let e = Q8Matrix::from_ggml_q8_0(&[0; 34], 10, 32).unwrap_err().to_string();
        assert!(e.contains("[10, 32]"), "{e}");
        let e = Q8Matrix::from_ggml_q8_0(&[0; 33], 16, 32).unwrap_err().to_string();
        assert!(e.contains("544 bytes"), "{e}");
        assert!(quantize_acts(&[0.0; 40], 32).is_err());
        let w = Q8Matrix::from_ggml_q8_0(&vec![0; 16 * 34], 16, 32).unwrap();
        let acts = quantize_acts(&[0.0; 64], 32).unwrap();
        let e = w.matmul_quantized(&acts, &mut [0.0; 16]).unwrap_err().to_string();
        assert!(e.contains("activations [2, 32]"), "{e}");
    }
}
