//! The AVX-512 VNNI kernel (x86-64: Intel Ice Lake and later, AMD Zen 4 and later): one
//! `vpdpbusd` computes 4 products for all 16 rows of a tile against 4 broadcast activation
//! bytes (the weights' +128 offset makes them the unsigned operand).

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
pub(super) unsafe fn quantize(x: &[f32], a: &mut QActs) {
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
