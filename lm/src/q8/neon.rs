//! The Arm kernel (aarch64 with the dotprod extension: Cortex-A76 and later, i.e. Raspberry Pi
//! 5 and Orange Pi 5; the paper's board). `sdot` multiplies 4 signed bytes by 4 signed bytes
//! and adds them into each i32 lane, so a 128-bit load of a group (4 rows × 4 bytes) against
//! 4 activation bytes broadcast to every lane gives 4 rows' partial sums at once; a 16-row
//! tile is 4 such quarters.
//!
//! The repacked weights are shared with the other kernels (`[8 groups][16 rows][4 bytes]`,
//! +128 offset): `eor 0x80` gives the signed weights back, so the integer sums are exactly
//! Σ w·x, the same numbers the scalar definition forms as `c + Σ (w+128)·x`, and the f32
//! steps (f16 scale widening, `d_w · d_x`, fused multiply-add per block) are the same
//! operations in the same order: bit-identical results.
//!
//! `sdot` is issued with inline assembly: its intrinsic (`vdotq_s32`) is still unstable in
//! Rust (`stdarch_neon_dotprod`), while the `dotprod` target feature and its run-time
//! detection are stable.

use core::arch::aarch64::*;
use core::arch::asm;

use super::{Q8Matrix, QActs, BLOCK, TILE};

/// Activation rows processed against one tile at a time (prefill): 2 rows × 4 quarters of i32
/// sums, as many f32 accumulators and the 4 weight quarters stay in the 32 vector registers.
const MR: usize = 2;

/// Tile `t` (16 output rows) against all activation rows; writes `out[i, 16t..16t+16]`.
///
/// # Safety
/// NEON and dotprod must be available, `out` must hold `acts.m × w.n` values and the shapes
/// must have passed [`Q8Matrix::check`].
#[target_feature(enable = "neon,dotprod")]
pub(super) unsafe fn tile(w: &Q8Matrix, acts: &QActs, t: usize, out: *mut f32) {
    let mut m0 = 0;
    while m0 < acts.m {
        let left = acts.m - m0;
        if left >= MR {
            rows::<MR>(w, acts, t, m0, out);
            m0 += MR;
        } else {
            rows::<1>(w, acts, t, m0, out);
            m0 += 1;
        }
    }
}

/// `acc + ` per lane Σ_{j<4} a[4·lane + j] · b[4·lane + j] (signed bytes).
#[inline(always)]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY (of the instruction): callers run with the dotprod feature enabled.
    asm!(
        "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
        acc = inout(vreg) acc,
        a = in(vreg) a,
        b = in(vreg) b,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

/// `R` activation rows against tile `t`.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn rows<const R: usize>(w: &Q8Matrix, acts: &QActs, t: usize, m0: usize, out: *mut f32) {
    let (k, kb) = (w.k, w.k / BLOCK);
    let qs = w.qs.as_ptr().add(t * TILE * k);
    let ds = w.d.as_ptr().add(t * kb * TILE);
    let offset = vdupq_n_u8(0x80);
    let mut acc = [[vdupq_n_f32(0.0); 4]; R];
    for b in 0..kb {
        let wb = qs.add(b * BLOCK * TILE);
        let mut s = [[vdupq_n_s32(0); 4]; R];
        for g in 0..BLOCK / 4 {
            let mut wq = [vdupq_n_s8(0); 4];
            for (q, wv) in wq.iter_mut().enumerate() {
                *wv = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(wb.add((g * TILE + q * 4) * 4)), offset));
            }
            for (r, sr) in s.iter_mut().enumerate() {
                let x = acts.q.as_ptr().add((m0 + r) * k + b * BLOCK + g * 4);
                let xv = vreinterpretq_s8_s32(vdupq_n_s32(std::ptr::read_unaligned(x as *const i32)));
                for q in 0..4 {
                    sr[q] = sdot(sr[q], wq[q], xv);
                }
            }
        }
        let mut dw = [vdupq_n_f32(0.0); 4];
        for (q, d) in dw.iter_mut().enumerate() {
            *d = f16x4_to_f32(ds.add(b * TILE + q * 4));
        }
        for r in 0..R {
            let xd = vdupq_n_f32(*acts.d.get_unchecked((m0 + r) * kb + b));
            for q in 0..4 {
                // vfmaq_f32(a, b, c) = a + b·c with one rounding, like f32::mul_add(b, c, a).
                acc[r][q] = vfmaq_f32(acc[r][q], vcvtq_f32_s32(s[r][q]), vmulq_f32(dw[q], xd));
            }
        }
    }
    for r in 0..R {
        for q in 0..4 {
            vst1q_f32(out.add((m0 + r) * w.n + t * TILE + q * 4), acc[r][q]);
        }
    }
}

/// 4 f16 scales (raw bits) widened to f32, exactly as `half::f16::to_f32` does (f16 → f32 is
/// exact). Done in scalar code through `half` rather than `fcvtl`, whose intrinsic on f16
/// vectors is unstable; it runs once per block and tile quarter.
#[inline(always)]
unsafe fn f16x4_to_f32(p: *const u16) -> float32x4_t {
    let v = [
        half::f16::from_bits(*p).to_f32(),
        half::f16::from_bits(*p.add(1)).to_f32(),
        half::f16::from_bits(*p.add(2)).to_f32(),
        half::f16::from_bits(*p.add(3)).to_f32(),
    ];
    vld1q_f32(v.as_ptr())
}
