//! Whisper in CTranslate2 format → whisper.cpp's ggml format (the model `asr` loads).
//!
//! The output layout is what whisper.cpp's `whisper_model_load` reads (it checks every
//! tensor's name, element count, shape and byte size, so it is the reference), little-endian:
//!
//! ```text
//! i32 magic 0x67676d6c ("ggml")
//! 11 × i32 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!     n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype (1: f16 matrices)
//! mel filterbank: i32 n_mels, i32 n_fft_bins, f32[n_mels × n_fft_bins]
//! vocab: i32 count, then per token i32 byte length + raw bytes
//! tensors until EOF: i32 n_dims, i32 name length, i32 type (0 f32, 1 f16),
//!     i32 dims[n_dims] (innermost first), name bytes, raw data
//! ```

pub mod ct2;
pub mod mapping;
pub mod mel;
pub mod vocab;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub use mapping::Hparams;

/// ggml file magic ("ggml").
pub const GGML_MAGIC: u32 = 0x6767_6d6c;
/// ggml tensor type id of f32.
pub const GGML_F32: i32 = 0;
/// ggml tensor type id of f16.
pub const GGML_F16: i32 = 1;

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input is not a CTranslate2 Whisper model this converter can handle; the message
    /// names the file, tensor or token.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ConvertError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ConvertError::Io { path: path.to_path_buf(), source }
    }
}

/// The ggml type whisper.cpp allocates for a tensor: f32 for 1-D tensors, the conv biases and
/// the positional embeddings, f16 for the rest. It checks byte sizes on load, so this must
/// match its declarations.
pub fn ggml_type_for(name: &str, rank: usize) -> i32 {
    let f32_names = ["encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding"];
    if rank < 2 || f32_names.contains(&name) {
        GGML_F32
    } else {
        GGML_F16
    }
}

fn tensor_bytes(t: &ct2::Tensor, ttype: i32) -> Vec<u8> {
    match (t.dtype, ttype) {
        (ct2::DType::F16, GGML_F16) | (ct2::DType::F32, GGML_F32) => t.data.clone(),
        (_, GGML_F32) => t.to_f32_vec().iter().flat_map(|v| v.to_le_bytes()).collect(),
        // f32 → f16 rounds to nearest even, as numpy's astype does.
        _ => t.to_f32_vec().iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
    }
}

/// Write the ggml file for mapped tensors to `w` (layout in the module docs).
pub fn write_ggml(w: &mut impl Write, hp: &Hparams, filters: &[f32], vocab: &[Vec<u8>], tensors: &mapping::Mapped) -> std::io::Result<()> {
    let i32le = |v: usize| (v as i32).to_le_bytes();
    w.write_all(&GGML_MAGIC.to_le_bytes())?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        1,
    ] {
        w.write_all(&i32le(v))?;
    }
    w.write_all(&i32le(hp.n_mels))?;
    w.write_all(&i32le(filters.len() / hp.n_mels.max(1)))?;
    for f in filters {
        w.write_all(&f.to_le_bytes())?;
    }
    w.write_all(&i32le(vocab.len()))?;
    for token in vocab {
        w.write_all(&i32le(token.len()))?;
        w.write_all(token)?;
    }
    for (name, t) in tensors {
        let ttype = ggml_type_for(name, t.shape.len());
        w.write_all(&i32le(t.shape.len()))?;
        w.write_all(&i32le(name.len()))?;
        w.write_all(&ttype.to_le_bytes())?;
        for &d in t.shape.iter().rev() {
            w.write_all(&i32le(d))?;
        }
        w.write_all(name.as_bytes())?;
        w.write_all(&tensor_bytes(t, ttype))?;
    }
    Ok(())
}

/// Convert the CTranslate2 Whisper directory `ct2_dir` (`model.bin`, `config.json`,
/// `tokenizer.json`, `vocabulary.txt`, as `ct2-transformers-converter` writes them) into the
/// ggml file `out`, written exactly there (callers pass a temporary name and rename). A
/// partly written file is removed on failure.
///
/// Errors: [`ConvertError::Input`] names the missing file, tensor or bad value;
/// [`ConvertError::Io`] a read or write failure.
pub fn convert(ct2_dir: &Path, out: &Path) -> Result<Hparams, ConvertError> {
    if !ct2_dir.is_dir() {
        return Err(ConvertError::Input(format!("{}: not a directory", ct2_dir.display())));
    }
    for f in ["model.bin", "config.json", "tokenizer.json", "vocabulary.txt"] {
        if !ct2_dir.join(f).is_file() {
            return Err(ConvertError::Input(format!("{}: missing required file {f}", ct2_dir.display())));
        }
    }
    let model = ct2::read(&ct2_dir.join("model.bin"))?;
    if model.spec_name != "WhisperSpec" {
        return Err(ConvertError::Input(format!("model.bin: spec is '{}', expected 'WhisperSpec'", model.spec_name)));
    }
    let hp = mapping::derive_hparams(&model.variables)?;
    let tensors = mapping::map_tensors(&model.variables, &hp)?;
    let tok_path = ct2_dir.join("tokenizer.json");
    let tok_json = std::fs::read_to_string(&tok_path).map_err(|e| ConvertError::io(&tok_path, e))?;
    let vocab = vocab::load_base_vocab(&tok_json, &tok_path)?;
    // vocabulary.txt is CT2's id-ordered list of all n_vocab tokens: it catches a
    // tokenizer.json that belongs to another model.
    let vpath = ct2_dir.join("vocabulary.txt");
    let n_lines = std::fs::read_to_string(&vpath).map_err(|e| ConvertError::io(&vpath, e))?.lines().count();
    if n_lines != hp.n_vocab {
        return Err(ConvertError::Input(format!("vocabulary.txt has {n_lines} tokens but the model's embedding has {} rows", hp.n_vocab)));
    }
    if vocab.len() > hp.n_vocab {
        return Err(ConvertError::Input(format!("tokenizer.json has {} base tokens, more than n_vocab {}", vocab.len(), hp.n_vocab)));
    }
    let filters = mel::filterbank(16_000, 400, hp.n_mels);
    let written = std::fs::File::create(out).and_then(|f| {
        let mut w = BufWriter::new(f);
        write_ggml(&mut w, &hp, &filters, &vocab, &tensors)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(out);
        return Err(ConvertError::io(out, e));
    }
    Ok(hp)
}
