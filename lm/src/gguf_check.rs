//! A look at a GGUF header before candle parses it: candle's parser panics on some
//! malformed headers (`general.alignment = 0` divides by zero), and a bad file must
//! be an error, not a crash.

/// GGUF metadata value types (the GGUF spec's numbering).
mod gguf_type {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// Read the GGUF header's metadata and refuse `general.alignment` values candle
/// cannot use (0 divides by zero inside its parser). Leaves the reader at the start.
/// Errors: not a GGUF v2/v3 file, truncated metadata, or a bad alignment.
pub fn check_gguf_alignment<R: std::io::Read + std::io::Seek>(r: &mut R) -> Result<(), String> {
    use std::io::SeekFrom;
    let start = r.stream_position().map_err(|e| e.to_string())?;
    let result = scan_alignment(&mut std::io::BufReader::new(&mut *r));
    r.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    match result? {
        Some(0) => Err("general.alignment = 0 (must be a power of two > 0)".into()),
        Some(a) if !a.is_power_of_two() => Err(format!("general.alignment = {a} (must be a power of two)")),
        _ => Ok(()),
    }
}

/// The `general.alignment` value of a GGUF header (None if absent).
fn scan_alignment<R: std::io::Read>(r: &mut R) -> Result<Option<u64>, String> {
    fn take<const N: usize, R: std::io::Read>(r: &mut R) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        r.read_exact(&mut b).map_err(|e| format!("GGUF header: {e}"))?;
        Ok(b)
    }
    fn u32_of<R: std::io::Read>(r: &mut R) -> Result<u32, String> {
        Ok(u32::from_le_bytes(take::<4, R>(r)?))
    }
    fn u64_of<R: std::io::Read>(r: &mut R) -> Result<u64, String> {
        Ok(u64::from_le_bytes(take::<8, R>(r)?))
    }
    fn skip<R: std::io::Read>(r: &mut R, n: u64) -> Result<(), String> {
        let got = std::io::copy(&mut std::io::Read::take(&mut *r, n), &mut std::io::sink()).map_err(|e| e.to_string())?;
        if got == n {
            Ok(())
        } else {
            Err("GGUF header: truncated".into())
        }
    }
    fn skip_value<R: std::io::Read>(r: &mut R, ty: u32, depth: u32) -> Result<(), String> {
        use gguf_type::*;
        let size = match ty {
            U8 | I8 | BOOL => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
            STRING => u64_of(r)?,
            ARRAY if depth < 4 => {
                let ety = u32_of(r)?;
                let n = u64_of(r)?;
                for _ in 0..n {
                    skip_value(r, ety, depth + 1)?;
                }
                return Ok(());
            }
            _ => return Err(format!("GGUF header: unknown value type {ty}")),
        };
        skip(r, size)
    }
    if &take::<4, R>(r)? != b"GGUF" {
        return Err("not a GGUF file".into());
    }
    let version = u32_of(r)?;
    if !(2..=3).contains(&version) {
        return Err(format!("GGUF version {version} (expected 2 or 3)"));
    }
    let _tensors = u64_of(r)?;
    let n_kv = u64_of(r)?;
    let mut alignment = None;
    for _ in 0..n_kv {
        let len = u64_of(r)?;
        if len > 1 << 16 {
            return Err(format!("GGUF header: metadata key of {len} bytes"));
        }
        let mut key = vec![0u8; len as usize];
        r.read_exact(&mut key).map_err(|e| format!("GGUF header: {e}"))?;
        let ty = u32_of(r)?;
        if key == b"general.alignment" {
            alignment = Some(match ty {
                gguf_type::U8 | gguf_type::I8 => take::<1, R>(r)?[0] as u64,
                gguf_type::U16 | gguf_type::I16 => u16::from_le_bytes(take::<2, R>(r)?) as u64,
                gguf_type::U32 | gguf_type::I32 => u32_of(r)? as u64,
                gguf_type::U64 | gguf_type::I64 => u64_of(r)?,
                other => return Err(format!("general.alignment has value type {other}")),
            });
        } else {
            skip_value(r, ty, 0)?;
        }
    }
    Ok(alignment)
}

#[cfg(test)]
mod tests {
    use super::check_gguf_alignment;

    /// A GGUF v3 header with one string and one u32 `general.alignment` entry.
    fn header(alignment: u32) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        let key = |b: &mut Vec<u8>, k: &str| {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
        };
        key(&mut b, "general.name");
        b.extend(8u32.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend(b"abc");
        key(&mut b, "general.alignment");
        b.extend(4u32.to_le_bytes());
        b.extend(alignment.to_le_bytes());
        b
    }

    #[test]
    fn zero_alignment_is_refused_before_candle_reads_it() {
        let e = check_gguf_alignment(&mut std::io::Cursor::new(header(0))).unwrap_err();
        assert!(e.contains("general.alignment = 0"), "{e}");
        assert!(check_gguf_alignment(&mut std::io::Cursor::new(header(3))).is_err());
        let mut ok = std::io::Cursor::new(header(32));
        check_gguf_alignment(&mut ok).unwrap();
        assert_eq!(ok.position(), 0, "reader rewound for candle");
        // What the check protects against: candle itself panics on this header.
        let panicked =
            std::panic::catch_unwind(|| candle_core::quantized::gguf_file::Content::read(&mut std::io::Cursor::new(header(0))).map(|_| ()));
        assert!(panicked.is_err(), "candle no longer panics: the check may go");
        assert!(check_gguf_alignment(&mut std::io::Cursor::new(b"GGUF\x03".to_vec())).is_err());
    }
}
