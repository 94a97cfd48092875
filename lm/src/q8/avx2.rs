//! The AVX2 kernel (x86-64 without AVX-512 VNNI: most laptops, AMD Zen 1–3, Intel before Ice
//! Lake). AVX2 has no 8-bit dot product into i32 lanes without saturation, so it uses the
//! sign trick of llama.cpp's `mul_sum_i8_pairs`: `vpmaddubsw(|w|, sign(w)·x)` multiplies an
//! unsigned magnitude ≤ 128 by a signed value ≤ 127 and adds pairs (≤ 32,512, so the i16
//! saturation never triggers), then `vpmaddwd` with ones widens the pairs to i32. The integer
//! sums are therefore exactly Σ w·x, the same numbers the scalar definition forms as
//! `c + Σ (w+128)·x`, and the f32 steps are the same operations in the same order.
//!
//! The repacked weights are shared with the other kernels: `[8 groups][16 rows][4 bytes]`
//! offset by +128, so one 256-bit load is 8 rows × 4 bytes of a group and `xor 0x80` gives the
//! signed weights back. A tile's 16 rows are two such halves.

use core::arch::x86_64::*;

use super::{Q8Matrix, QActs, BLOCK, TILE};

/// Activation rows processed against one tile at a time (prefill): 2 rows × 2 halves of i32
/// sums, as many f32 accumulators and the weight vectors fit the 16 YMM registers.
const MR: usize = 2;

/// Tile `t` (16 output rows) against all activation rows; writes `out[i, 16t..16t+16]`.
///
/// # Safety
/// AVX2, FMA and F16C must be available, `out` must hold `acts.m × w.n` values and the shapes
/// must have passed [`Q8Matrix::check`].
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile(w: &Q8Matrix, acts: &QActs, t: usize, out: *mut f32) {
    let mut m0 = 0;
    while m0 < acts.m {
        if acts.m - m0 >= MR {
            rows::<MR>(w, acts, t, m0, out);
            m0 += MR;
        } else {
            rows::<1>(w, acts, t, m0, out);
            m0 += 1;
        }
    }
}

/// 8 i32 lanes, lane r = Σ_{j<4} w[r][j] · x[j] for the signed weights `w` (8 rows × 4 bytes,
/// `w_abs` = |w|) and 4 activation bytes `x` broadcast to every lane.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot4(w_abs: __m256i, w: __m256i, x: __m256i) -> __m256i {
    let pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(x, w));
    _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
}

/// `R` activation rows against both halves of tile `t` in one pass over its blocks (each
/// 64-byte group line holds 4 bytes of all 16 rows, so splitting the halves into two passes
/// would stream every line twice).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows<const R: usize>(w: &Q8Matrix, acts: &QActs, t: usize, m0: usize, out: *mut f32) {
    let (k, kb) = (w.k, w.k / BLOCK);
    let qs = w.qs.as_ptr().add(t * TILE * k);
    let ds = w.d.as_ptr().add(t * kb * TILE);
    let offset = _mm256_set1_epi8(-128);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut xr = [acts.q.as_ptr(); R];
    for (r, p) in xr.iter_mut().enumerate() {
        *p = acts.q.as_ptr().add((m0 + r) * k);
    }
    for b in 0..kb {
        let wb = qs.add(b * BLOCK * TILE);
        let mut s = [[_mm256_setzero_si256(); 2]; R];
        for g in 0..BLOCK / 4 {
            let w0 = _mm256_xor_si256(_mm256_loadu_si256(wb.add(g * TILE * 4) as *const __m256i), offset);
            let w1 = _mm256_xor_si256(_mm256_loadu_si256(wb.add(g * TILE * 4 + 32) as *const __m256i), offset);
            let (a0, a1) = (_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(w1, w1));
            for (sr, x) in s.iter_mut().zip(&xr) {
                let xv = _mm256_set1_epi32(std::ptr::read_unaligned(x.add(b * BLOCK + g * 4) as *const i32));
                sr[0] = _mm256_add_epi32(sr[0], dot4(a0, w0, xv));
                sr[1] = _mm256_add_epi32(sr[1], dot4(a1, w1, xv));
            }
        }
        let dw0 = _mm256_cvtph_ps(_mm_loadu_si128(ds.add(b * TILE) as *const __m128i));
        let dw1 = _mm256_cvtph_ps(_mm_loadu_si128(ds.add(b * TILE + 8) as *const __m128i));
        for r in 0..R {
            let xd = _mm256_set1_ps(*acts.d.get_unchecked((m0 + r) * kb + b));
            acc[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r][0]), _mm256_mul_ps(dw0, xd), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r][1]), _mm256_mul_ps(dw1, xd), acc[r][1]);
        }
    }
    for (r, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(out.add((m0 + r) * w.n + t * TILE), a[0]);
        _mm256_storeu_ps(out.add((m0 + r) * w.n + t * TILE + 8), a[1]);
    }
}
