//! Reader for CTranslate2's `model.bin` (binary versions 5 and 6).
//!
//! Layout (little-endian; ctranslate2/src/models/model.cc): u32 version, string spec name,
//! u32 revision, u32 variable count, then per variable: string name, u8 rank, u32 dims[rank],
//! u8 dtype id, u32 byte count, raw data; then (version ≥ 5) u32 alias count and
//! (alias, target) string pairs. A string is a u16 length including a trailing NUL.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConvertError;

/// CTranslate2 binary versions this reader understands (6 is current; 5 added the aliases).
pub const SUPPORTED_VERSIONS: [u32; 2] = [5, 6];

/// Element type of a stored variable (ctranslate2/types.h ids 0–4; bfloat16, id 5, is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// id 0
    F32,
    /// id 1
    I8,
    /// id 2
    I16,
    /// id 3
    I32,
    /// id 4
    F16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }

    /// True for the float types (f16, f32), the only ones a ggml tensor can be made of.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32)
    }
}

/// One variable: its shape as stored (row-major, outermost first; empty for a scalar), its
/// element type and its raw little-endian bytes (`shape.product() * dtype.size()` of them).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Row-major dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Little-endian element bytes.
    pub data: Vec<u8>,
}

impl Tensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a tensor with no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of a scalar (or one-element) integer or float tensor, as i64; None otherwise.
    pub fn scalar_i64(&self) -> Option<i64> {
        if self.len() != 1 {
            return None;
        }
        let d = &self.data;
        Some(match self.dtype {
            DType::I8 => d[0] as i8 as i64,
            DType::I16 => i16::from_le_bytes([d[0], d[1]]) as i64,
            DType::I32 => i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64,
            DType::F16 => half::f16::from_le_bytes([d[0], d[1]]).to_f32() as i64,
            DType::F32 => f32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64,
        })
    }

    /// Every element widened to f32 (f16 exactly; integers as their value).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let s = self.dtype.size();
        self.data
            .chunks_exact(s)
            .map(|c| match self.dtype {
                DType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                DType::F16 => half::f16::from_le_bytes([c[0], c[1]]).to_f32(),
                DType::I8 => c[0] as i8 as f32,
                DType::I16 => i16::from_le_bytes([c[0], c[1]]) as f32,
                DType::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32,
            })
            .collect()
    }
}

/// A parsed `model.bin`.
#[derive(Debug)]
pub struct Ct2Model {
    /// Binary version (5 or 6).
    pub version: u32,
    /// The model spec, `WhisperSpec` for Whisper.
    pub spec_name: String,
    /// The spec's revision.
    pub revision: u32,
    /// Every variable by name.
    pub variables: BTreeMap<String, Tensor>,
    /// Alias name → target variable name (tied weights).
    pub aliases: BTreeMap<String, String>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    source: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        if self.buf.len() - self.pos < n {
            return Err(ConvertError::Input(format!(
                "{}: truncated file (wanted {n} bytes at offset {}, file is {} bytes)",
                self.source,
                self.pos,
                self.buf.len()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, ConvertError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ConvertError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ConvertError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, ConvertError> {
        let n = self.u16()? as usize;
        let raw = self.take(n)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec())
            .map_err(|_| ConvertError::Input(format!("{}: a name at offset {} is not UTF-8", self.source, self.pos)))
    }
    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// Parse a `model.bin` held in memory; `source` names it in errors.
///
/// Errors: [`ConvertError::Input`] for a bad version, an unknown dtype, a byte count that does
/// not match the shape, truncation or trailing bytes.
pub fn parse(buf: &[u8], source: &str) -> Result<Ct2Model, ConvertError> {
    let mut r = Reader { buf, pos: 0, source };
    let version = r.u32()?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(ConvertError::Input(format!(
            "{source}: unsupported CTranslate2 binary version {version} (supported: 5, 6); is this \
             really a CTranslate2 model.bin?"
        )));
    }
    let spec_name = r.string()?;
    let revision = r.u32()?;
    let count = r.u32()?;
    let mut variables = BTreeMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let rank = r.u8()? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(r.u32()? as usize);
        }
        let type_id = r.u8()?;
        let nbytes = r.u32()? as usize;
        let dtype = DType::from_id(type_id).ok_or_else(|| {
            ConvertError::Input(format!(
                "{source}: variable '{name}' has unsupported dtype id {type_id} (supported: 0 f32, \
                 1 i8, 2 i16, 3 i32, 4 f16)"
            ))
        })?;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| ConvertError::Input(format!("{source}: variable '{name}' shape {shape:?} overflows")))?;
        if nbytes != expected {
            return Err(ConvertError::Input(format!(
                "{source}: variable '{name}' declares {nbytes} bytes but shape {shape:?} of {dtype:?} needs \
                 {expected}"
            )));
        }
        let data = r.take(nbytes)?.to_vec();
        variables.insert(name, Tensor { shape, dtype, data });
    }
    // A missing alias table (the file ends after the variables) is an empty one: aliases only
    // name tied weights that are also stored under their real name.
    let mut aliases = BTreeMap::new();
    if !r.at_end() {
        for _ in 0..r.u32()? {
            let alias = r.string()?;
            aliases.insert(alias, r.string()?);
        }
    }
    if !r.at_end() {
        return Err(ConvertError::Input(format!("{source}: {} unexpected trailing bytes after the alias table", buf.len() - r.pos)));
    }
    Ok(Ct2Model { version, spec_name, revision, variables, aliases })
}

/// Read and parse a `model.bin` file. Errors: [`ConvertError::Io`] when it cannot be read, else
/// as [`parse`].
pub fn read(path: &Path) -> Result<Ct2Model, ConvertError> {
    let buf = std::fs::read(path).map_err(|e| ConvertError::io(path, e))?;
    parse(&buf, &path.display().to_string())
}
