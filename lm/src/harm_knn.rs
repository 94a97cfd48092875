//! The nearest-neighbour term of the harmful-request check ([`crate::harm`]).
//!
//! The linear head flags many harmless questions ("How far away is the moon?") whose
//! near-copies sit among its *harmless* training turns, far from any harmful prompt; a linear
//! boundary cannot use that. This term adds to the head's logit
//! `scale · (knn(e) − offset)`, where `knn(e)` is the mean cosine of the embedding to its `k`
//! nearest harmful training prompts minus the mean cosine to its `k` nearest harmless ones
//! (`training/safety/harm_knn.py --write`, which also sets `scale` and `offset` so that the sum
//! ranks texts as the standardized blend its report measured: `docs/results/harm_knn.md`).
//!
//! The banks are the training prompts' MiniLM embeddings as int8 rows with one f32 scale per
//! row (`knn.safetensors`: `harmful` / `harmless` as I8 `[m, 384]`, `harmful_scale` /
//! `harmless_scale` as F32 `[m]`); a row stands for `q · scale`, as the trainer computed with.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::minilm::DIM;
use crate::{LmError, Result};

/// The `knn` entry of `head.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnSpec {
    /// The banks' file, relative to `head.json`'s directory.
    pub bank: String,
    /// Neighbours averaged on each side (≥ 1).
    pub k: usize,
    /// Logit units per unit of the knn margin (finite).
    pub scale: f32,
    /// The knn margin's mean on the calibration turns (finite).
    pub offset: f32,
}

/// One side's training embeddings, int8 with a scale per row.
#[derive(Clone)]
struct Bank {
    rows: Vec<i8>,
    scales: Vec<f32>,
}

/// The row count only: the rows themselves are megabytes.
impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bank({} rows)", self.scales.len())
    }
}

impl Bank {
    /// Reads `{name}` (I8 `[m, DIM]`) and `{name}_scale` (F32 `[m]`); `Err` names what is wrong.
    fn read(st: &SafeTensors, name: &str) -> std::result::Result<Self, String> {
        let rows = st.tensor(name).map_err(|e| format!("tensor `{name}`: {e}"))?;
        let scales = st.tensor(&format!("{name}_scale")).map_err(|e| format!("tensor `{name}_scale`: {e}"))?;
        let m = match (rows.dtype(), rows.shape()) {
            (Dtype::I8, &[m, d]) if d == DIM && m > 0 => m,
            (dt, shape) => return Err(format!("`{name}` is {dt:?} {shape:?}, expected I8 [m ≥ 1, {DIM}]")),
        };
        if scales.dtype() != Dtype::F32 || scales.shape() != [m] {
            return Err(format!("`{name}_scale` is {:?} {:?}, expected F32 [{m}]", scales.dtype(), scales.shape()));
        }
        let scales: Vec<f32> = scales.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if !scales.iter().all(|s| s.is_finite()) {
            return Err(format!("`{name}_scale` holds a non-finite number"));
        }
        Ok(Self { rows: rows.data().iter().map(|&b| b as i8).collect(), scales })
    }

    /// The mean of the `k` largest dot products of `e` with the bank's rows (all rows when
    /// there are fewer than `k`).
    fn mean_top_k(&self, e: &[f32], k: usize) -> f32 {
        let mut top: Vec<f32> = Vec::with_capacity(k + 1);
        for (row, scale) in self.rows.chunks_exact(DIM).zip(&self.scales) {
            let dot = scale * dot_i8(row, e);
            if top.len() < k || dot > top[top.len() - 1] {
                let at = top.partition_point(|&t| t >= dot);
                top.insert(at, dot);
                top.truncate(k);
            }
        }
        top.iter().sum::<f32>() / top.len() as f32
    }
}

/// `Σ q_i · x_i` over one int8 row and an embedding, in eight partial sums: a single running f32
/// sum must keep its order and so cannot be vectorized (≈ 5× slower over the 18,158 rows,
/// 6.3 against 1.3 ms per scan measured on this machine).
fn dot_i8(row: &[i8], e: &[f32]) -> f32 {
    const _: () = assert!(DIM % 8 == 0, "chunks_exact(8) would drop the tail");
    let mut acc = [0.0f32; 8];
    for (r, x) in row.chunks_exact(8).zip(e.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += f32::from(r[i]) * x[i];
        }
    }
    acc.iter().sum()
}

/// The term, loaded: the spec and both banks.
#[derive(Debug, Clone)]
pub struct KnnTerm {
    spec: KnnSpec,
    harmful: Bank,
    harmless: Bank,
}

impl KnnTerm {
    /// Loads the banks `spec.bank` names, relative to `dir`. Errors
    /// ([`LmError::InvalidConfig`] naming the file): `k` of 0, a non-finite scale or offset,
    /// an unreadable file, a missing tensor or one of the wrong type or shape.
    pub fn load(spec: KnnSpec, dir: &Path) -> Result<Self> {
        let path = dir.join(&spec.bank);
        let bad = |why: String| LmError::InvalidConfig(format!("{}: {why}", path.display()));
        if spec.k == 0 || !spec.scale.is_finite() || !spec.offset.is_finite() {
            return Err(bad(format!(
                "knn k must be ≥ 1 and scale, offset finite (k {}, scale {}, offset {})",
                spec.k, spec.scale, spec.offset
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| LmError::io(&path, e))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let harmful = Bank::read(&st, "harmful").map_err(bad)?;
        let harmless = Bank::read(&st, "harmless").map_err(bad)?;
        Ok(Self { spec, harmful, harmless })
    }

    /// The knn margin of an L2-normalized embedding ([`DIM`] floats): mean cosine to the `k`
    /// nearest harmful rows minus that to the `k` nearest harmless rows, in [−2, 2].
    pub fn margin(&self, embedding: &[f32]) -> f32 {
        self.harmful.mean_top_k(embedding, self.spec.k) - self.harmless.mean_top_k(embedding, self.spec.k)
    }

    /// What the term adds to the head's logit: `scale · (margin − offset)`.
    pub fn logit_term(&self, embedding: &[f32]) -> f32 {
        self.spec.scale * (self.margin(embedding) - self.spec.offset)
    }

    /// Rows in the (harmful, harmless) banks.
    pub fn bank_sizes(&self) -> (usize, usize) {
        (self.harmful.scales.len(), self.harmless.scales.len())
    }
}

/// Bank files for tests.
#[cfg(test)]
pub(crate) mod testbank {
    use super::*;
    use safetensors::tensor::TensorView;
    use std::collections::HashMap;

    /// A bank file from rows given as (axis, value): each row is `value` on one axis, so its
    /// int8 form is 127 there with scale value / 127.
    pub(crate) fn write_bank(path: &Path, harmful: &[(usize, f32)], harmless: &[(usize, f32)], tamper: Option<&str>) {
        let mut data: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)> = HashMap::new();
        for (name, rows) in [("harmful", harmful), ("harmless", harmless)] {
            let mut q = vec![0u8; rows.len() * DIM];
            let mut s = Vec::new();
            for (i, &(axis, v)) in rows.iter().enumerate() {
                q[i * DIM + axis] = 127i8 as u8;
                s.extend_from_slice(&(v / 127.0).to_le_bytes());
            }
            let dt = if tamper == Some(name) { Dtype::U8 } else { Dtype::I8 };
            data.insert(name.into(), (dt, vec![rows.len(), DIM], q));
            data.insert(format!("{name}_scale"), (Dtype::F32, vec![rows.len()], s));
        }
        let views: Vec<(String, TensorView)> =
            data.iter().map(|(n, (dt, shape, bytes))| (n.clone(), TensorView::new(*dt, shape.clone(), bytes).unwrap())).collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testbank::write_bank;
    use super::*;

    fn spec(k: usize) -> KnnSpec {
        KnnSpec { bank: "knn.safetensors".into(), k, scale: 2.0, offset: 0.1 }
    }

    fn axis(i: usize) -> Vec<f32> {
        let mut e = vec![0.0; DIM];
        e[i] = 1.0;
        e
    }

    #[test]
    fn the_margin_averages_the_k_nearest_rows_of_each_side() {
        let dir = tempfile::tempdir().unwrap();
        // Harmful rows along axis 0 (cosines 0.9, 0.5, 0.1 with axis 0), harmless along axis 1.
        write_bank(&dir.path().join("knn.safetensors"), &[(0, 0.9), (0, 0.5), (0, 0.1)], &[(1, 0.8), (1, 0.2)], None);
        let t1 = KnnTerm::load(spec(1), dir.path()).unwrap();
        assert_eq!(t1.bank_sizes(), (3, 2));
        let near = |got: f32, want: f32| assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        near(t1.margin(&axis(0)), 0.9 - 0.0);
        near(t1.margin(&axis(1)), 0.0 - 0.8);
        near(t1.logit_term(&axis(0)), 2.0 * (0.9 - 0.1));
        let t2 = KnnTerm::load(spec(2), dir.path()).unwrap();
        near(t2.margin(&axis(0)), (0.9 + 0.5) / 2.0 - 0.0);
        // k larger than a bank: the whole bank.
        let t5 = KnnTerm::load(spec(5), dir.path()).unwrap();
        near(t5.margin(&axis(1)), 0.0 - (0.8 + 0.2) / 2.0);
    }

    #[test]
    fn a_broken_bank_or_spec_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("knn.safetensors");
        let err = |s: KnnSpec| KnnTerm::load(s, dir.path()).unwrap_err().to_string();
        assert!(err(spec(1)).contains("knn.safetensors"), "a missing file is named");
        write_bank(&p, &[(0, 0.9)], &[(1, 0.8)], Some("harmless"));
        let e = err(spec(1));
        assert!(e.contains("knn.safetensors") && e.contains("`harmless` is U8"), "{e}");
        write_bank(&p, &[(0, 0.9)], &[(1, 0.8)], None);
        assert!(err(spec(0)).contains("k must be ≥ 1"));
        assert!(err(KnnSpec { scale: f32::NAN, ..spec(1) }).contains("finite"));
        std::fs::write(&p, b"not safetensors").unwrap();
        assert!(err(spec(1)).contains("not a safetensors file"));
    }
}
