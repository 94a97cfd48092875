//! Q8_0 matrix × f32 activations for x86-64 CPUs with AVX-512 VNNI: the decode and prefill
//! matmuls of a Q8_0 μLM (the deployment format; paper §on-device inference).
//!
//! Why our own kernel: candle's x86 Q8_0 path quantizes activations per 256 values (so the
//! reduction length must be a multiple of 256, which 512-8's SwiGLU width 1408 is not), keeps
//! only 2 dependency chains per 16 outputs in the decode GEMV and re-quantizes activations
//! with scalar `roundf`. Here:
//! - weights are repacked once at load into 16-row tiles, each 32-value block stored as
//!   `[8 groups][16 rows][4 bytes]` offset by +128 (u8), so one `vpdpbusd` computes 4 products
//!   for 16 output rows against 4 broadcast activation bytes;
//! - activations are quantized per 32 values like llama.cpp's `quantize_row_q8_0` (f16 scale,
//!   round to nearest), so results follow llama.cpp's Q8_0 × Q8_0 numerics; the +128 offset is
//!   removed with each activation block's integer sum;
//! - a weight tile is reused for up to [`MT`] activation rows while it is in L1 (prefill), and
//!   the decode GEMV (one row) splits each block over two independent accumulators.
//!
//! On other CPUs [`Q8Matrix::supported`] is false and the model keeps candle's kernels (NEON on
//! ARM boards). [`Q8Matrix::matmul_reference`] is the same integer arithmetic in scalar code,
//! bit-identical to the SIMD path; tests compare the two.

use half::f16;

use crate::error::{LmError, Result};

/// Values per Q8_0 block (GGML format spec).
pub const BLOCK: usize = 32;
/// Output rows per weight tile (one 512-bit register of i32 sums).
pub const TILE: usize = 16;
/// Activation rows processed against one weight tile at a time (prefill).
pub const MT: usize = 8;
/// Bytes of one GGML Q8_0 block: f16 scale + 32 × i8.
const Q8_0_BYTES: usize = 2 + BLOCK;

/// A `[n, k]` Q8_0 matrix repacked for the VNNI kernel (`n` output rows, `k` inputs).
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    n: usize,
    k: usize,
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
    /// True when this CPU runs the kernel (x86-64 with AVX-512 F/BW/VNNI).
    pub fn supported() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// True when a `[n, k]` matrix fits the tiling (n a multiple of 16, k of 32).
    pub fn shape_ok(n: usize, k: usize) -> bool {
        n > 0 && k > 0 && n % TILE == 0 && k % BLOCK == 0
    }

    /// Repack raw GGML Q8_0 bytes of a row-major `[n, k]` matrix (n·k/32 blocks of 34 bytes).
    /// Errors: a shape that does not tile, or a byte length that does not match the shape.
    pub fn from_ggml_q8_0(bytes: &[u8], n: usize, k: usize) -> Result<Q8Matrix> {
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
        Ok(Q8Matrix { n, k, qs, d })
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
        if !Self::supported() {
            return Err(LmError::InvalidArgument("Q8_0 kernel needs AVX-512 F/BW/VNNI".into()));
        }
        let tiles = self.n / TILE;
        let threads = rayon::current_num_threads().min(tiles).max(1);
        let out_ptr = SendPtr(out.as_mut_ptr());
        let run = |t0: usize, t1: usize| {
            let p = out_ptr;
            for t in t0..t1 {
                // SAFETY: features checked above; every call writes only columns of tile t.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    simd::tile(self, acts, t, p.0)
                };
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
    if Q8Matrix::supported() {
        // SAFETY: features checked; the buffers were sized for x above.
        unsafe { simd::quantize(x, &mut a) };
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

/// A raw output pointer that may cross to pool threads: each thread writes disjoint tiles.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: only used for writes to disjoint column ranges while the owning slice is borrowed.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    use super::{Q8Matrix, QActs, BLOCK, MT, TILE};

    /// Tile `t` (16 output rows) against all activation rows; writes `out[i, 16t..16t+16]`.
    ///
    /// # Safety
    /// AVX-512 F/BW/VNNI must be available, `out` must hold `acts.m × w.n` values and the
    /// shapes must have passed [`Q8Matrix::check`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn tile(w: &Q8Matrix, acts: &QActs, t: usize, out: *mut f32) {
        let mut m0 = 0;
        while m0 < acts.m {
            let left = acts.m - m0;
            match left.min(MT) {
                1 => gemv(w, acts, t, m0, out),
                2 => rows::<2>(w, acts, t, m0, out),
                3 => rows::<3>(w, acts, t, m0, out),
                4 => rows::<4>(w, acts, t, m0, out),
                5 => rows::<5>(w, acts, t, m0, out),
                6 => rows::<6>(w, acts, t, m0, out),
                7 => rows::<7>(w, acts, t, m0, out),
                _ => rows::<MT>(w, acts, t, m0, out),
            }
            m0 += left.min(MT);
        }
    }

    /// [`super::quantize_scalar`] with 16-lane vectors: per 32-value block, max |x|, then
    /// x · (1/d) converted with the default round-to-nearest-even mode.
    ///
    /// # Safety
    /// AVX-512 F/BW must be available and `a`'s buffers sized for `x`.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn quantize(x: &[f32], a: &mut super::QActs) {
        for (blk, vals) in x.chunks_exact(BLOCK).enumerate() {
            let v0 = _mm512_loadu_ps(vals.as_ptr());
            let v1 = _mm512_loadu_ps(vals.as_ptr().add(16));
            // NaN lanes count as 0 in the max, as f32::max does in the scalar fold
            // (max_ps would return whichever operand is second).
            let a0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(v0, v0), _mm512_abs_ps(v0));
            let a1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(v1, v1), _mm512_abs_ps(v1));
            let amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
            let d = amax / 127.0;
            let id = _mm512_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
            let q0 = _mm512_cvtps_epi32(clamp127(_mm512_mul_ps(v0, id)));
            let q1 = _mm512_cvtps_epi32(clamp127(_mm512_mul_ps(v1, id)));
            let dst = a.q.as_mut_ptr().add(blk * BLOCK);
            _mm_storeu_si128(dst as *mut __m128i, _mm512_cvtepi32_epi8(q0));
            _mm_storeu_si128(dst.add(16) as *mut __m128i, _mm512_cvtepi32_epi8(q1));
            let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            a.d[blk] = half::f16::from_f32(d).to_f32();
            a.c[blk] = -128 * sum;
        }
    }

    /// NaN → 0, then clamp to ±127: the scalar definition's `clamp` and float → int
    /// cast (cvtps would turn NaN and ±inf into i32::MIN).
    ///
    /// # Safety
    /// AVX-512 F must be available.
    #[target_feature(enable = "avx512f")]
    unsafe fn clamp127(p: __m512) -> __m512 {
        let p = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(p, p), p);
        _mm512_min_ps(_mm512_max_ps(p, _mm512_set1_ps(-127.0)), _mm512_set1_ps(127.0))
    }

    /// Blocks ahead of the decode GEMV's software prefetch (4 KB; 4–16 measured within noise).
    const PF: usize = 8;

    #[inline(always)]
    unsafe fn bcast4(q: *const i8) -> __m512i {
        _mm512_set1_epi32(std::ptr::read_unaligned(q as *const i32))
    }

    /// One activation row (decode): each block's 8 groups go to two accumulators so the
    /// `vpdpbusd` latency chain is halved; the block [`PF`] ahead is prefetched.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn gemv(w: &Q8Matrix, acts: &QActs, t: usize, i: usize, out: *mut f32) {
        let (k, kb) = (w.k, w.k / BLOCK);
        let qs = w.qs.as_ptr().add(t * TILE * k);
        let ds = w.d.as_ptr().add(t * kb * TILE);
        let xq = acts.q.as_ptr().add(i * k);
        let (xd, xc) = (acts.d.as_ptr().add(i * kb), acts.c.as_ptr().add(i * kb));
        let mut acc = _mm512_setzero_ps();
        for b in 0..kb {
            let wb = qs.add(b * BLOCK * TILE);
            for line in 0..8 {
                // wrapping: the last blocks prefetch past the end, which is harmless but not in bounds.
                _mm_prefetch::<_MM_HINT_T0>(wb.wrapping_add(PF * BLOCK * TILE + line * 64) as *const i8);
            }
            let xb = xq.add(b * BLOCK);
            let mut s0 = _mm512_set1_epi32(*xc.add(b));
            let mut s1 = _mm512_setzero_si512();
            for g in (0..BLOCK / 4).step_by(2) {
                let w0 = _mm512_loadu_si512(wb.add(g * TILE * 4) as *const _);
                let w1 = _mm512_loadu_si512(wb.add((g + 1) * TILE * 4) as *const _);
                s0 = _mm512_dpbusd_epi32(s0, w0, bcast4(xb.add(g * 4)));
                s1 = _mm512_dpbusd_epi32(s1, w1, bcast4(xb.add(g * 4 + 4)));
            }
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(ds.add(b * TILE) as *const _));
            let f = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
            acc = _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_set1_ps(*xd.add(b))), acc);
        }
        _mm512_storeu_ps(out.add(i * w.n + t * TILE), acc);
    }

    /// `R` activation rows (prefill) against one weight tile: each loaded weight vector feeds R
    /// independent `vpdpbusd` chains.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn rows<const R: usize>(w: &Q8Matrix, acts: &QActs, t: usize, m0: usize, out: *mut f32) {
        let (k, kb) = (w.k, w.k / BLOCK);
        let qs = w.qs.as_ptr().add(t * TILE * k);
        let ds = w.d.as_ptr().add(t * kb * TILE);
        let mut acc = [_mm512_setzero_ps(); R];
        // Row pointers hoisted so each broadcast is one [base + offset] load, not an address
        // computation per row and group.
        let mut xr = [acts.q.as_ptr(); R];
        for (r, p) in xr.iter_mut().enumerate() {
            *p = acts.q.as_ptr().add((m0 + r) * k);
        }
        for b in 0..kb {
            let wb = qs.add(b * BLOCK * TILE);
            let mut s = [_mm512_setzero_si512(); R];
            for (r, sr) in s.iter_mut().enumerate() {
                *sr = _mm512_set1_epi32(*acts.c.get_unchecked((m0 + r) * kb + b));
            }
            for g in 0..BLOCK / 4 {
                let wv = _mm512_loadu_si512(wb.add(g * TILE * 4) as *const _);
                let off = b * BLOCK + g * 4;
                for (sr, x) in s.iter_mut().zip(&xr) {
                    *sr = _mm512_dpbusd_epi32(*sr, wv, bcast4(x.add(off)));
                }
            }
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(ds.add(b * TILE) as *const _));
            for r in 0..R {
                let j = (m0 + r) * kb + b;
                let f = _mm512_cvtepi32_ps(s[r]);
                acc[r] = _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_set1_ps(*acts.d.get_unchecked(j))), acc[r]);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add((m0 + r) * w.n + t * TILE), *a);
        }
    }
}

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

    #[test]
    fn simd_matches_scalar_reference_bit_for_bit_and_dense_closely() {
        if !Q8Matrix::supported() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI (the model uses candle's kernels)");
            return;
        }
        // 1 (decode), 8 (a full tile of rows) and 11 (8 + a remainder of 3) activation rows;
        // k = 1408 is 512-8's SwiGLU width, which candle's fast path cannot take.
        for (n, k, m) in [(48, 1408, 1), (32, 512, 8), (64, 96, 11)] {
            let bytes = random_q8_0(n, k, 7);
            let w = Q8Matrix::from_ggml_q8_0(&bytes, n, k).unwrap();
            let x = random_x(m * k, 9);
            let acts = quantize_acts(&x, k).unwrap();
            let simd = w.matmul(&x).unwrap();
            let scalar = w.matmul_reference(&acts).unwrap();
            assert_eq!(simd, scalar, "[{n}, {k}] × {m} rows");
            let dense = dense_product(&bytes, n, k, &x);
            let scale = dense.iter().fold(0f32, |a, v| a.max(v.abs()));
            for (a, b) in simd.iter().zip(&dense) {
                // 8-bit activations: error ≈ 1/254 of each block's max, summed over blocks.
                assert!((a - b).abs() <= 0.02 * scale, "{a} vs dense {b} (max |y| {scale})");
            }
        }
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
        if !Q8Matrix::supported() {
            return;
        }
        let (n, k) = (160, 256);
        let w = Q8Matrix::from_ggml_q8_0(&random_q8_0(n, k, 3), n, k).unwrap();
        let x = random_x(5 * k, 4);
        let one = w.matmul(&x).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let two = pool.install(|| w.matmul(&x)).unwrap();
        assert_eq!(one, two);
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
