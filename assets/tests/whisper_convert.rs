//! The CTranslate2 → ggml converter on hand-built CT2 files (reader, mapping, vocabulary, mel
//! filters, writer), and on the real Whisper tiny.en package when its wheel is in the cache.

use std::collections::BTreeMap;
use std::path::Path;

use assets::whisper_ggml::ct2::{self, DType, Tensor};
use assets::whisper_ggml::{self, mapping, mel, vocab, ConvertError};

fn ct2_string(s: &str) -> Vec<u8> {
    let mut raw = s.as_bytes().to_vec();
    raw.push(0);
    let mut out = (raw.len() as u16).to_le_bytes().to_vec();
    out.extend(raw);
    out
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect()
}

fn tensor_f16(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor { shape: shape.to_vec(), dtype: DType::F16, data: f16_bytes(v) }
}

fn zeros(shape: &[usize]) -> Tensor {
    tensor_f16(shape, &vec![0.0; shape.iter().product()])
}

/// A CT2 `model.bin`: (name, tensor) pairs in order, optional aliases.
fn write_ct2(vars: &[(String, Tensor)], aliases: Option<&[(&str, &str)]>, version: u32, spec: &str) -> Vec<u8> {
    let mut out = version.to_le_bytes().to_vec();
    out.extend(ct2_string(spec));
    out.extend(3u32.to_le_bytes());
    out.extend((vars.len() as u32).to_le_bytes());
    for (name, t) in vars {
        out.extend(ct2_string(name));
        out.push(t.shape.len() as u8);
        for &d in &t.shape {
            out.extend((d as u32).to_le_bytes());
        }
        out.push(match t.dtype {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
        });
        out.extend((t.data.len() as u32).to_le_bytes());
        out.extend(&t.data);
    }
    if let Some(a) = aliases {
        out.extend((a.len() as u32).to_le_bytes());
        for (k, v) in a {
            out.extend(ct2_string(k));
            out.extend(ct2_string(v));
        }
    }
    out
}

fn scalar_i16(v: i16) -> Tensor {
    Tensor { shape: vec![], dtype: DType::I16, data: v.to_le_bytes().to_vec() }
}

/// A complete CT2 variable set for a 1 + 1 layer, width-4 model (7 tokens, 2 mels).
fn tiny_vars(weight: DType) -> BTreeMap<String, Tensor> {
    let n = 4;
    let mut v: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut put = |k: &str, t: Tensor| {
        v.insert(k.to_string(), t);
    };
    put("encoder/conv1/weight", zeros(&[n, 2, 3]));
    put("encoder/conv1/bias", zeros(&[n]));
    put("encoder/conv2/weight", zeros(&[n, n, 3]));
    put("encoder/conv2/bias", zeros(&[n]));
    put("encoder/position_encodings/encodings", zeros(&[5, n]));
    put("encoder/num_heads", scalar_i16(2));
    put("decoder/num_heads", scalar_i16(2));
    put("decoder/embeddings/weight", zeros(&[7, n]));
    put("decoder/position_encodings/encodings", zeros(&[3, n]));
    let w = |rows: usize, cols: usize| match weight {
        DType::I8 => Tensor { shape: vec![rows, cols], dtype: DType::I8, data: vec![0; rows * cols] },
        _ => zeros(&[rows, cols]),
    };
    for side in ["encoder", "decoder"] {
        put(&format!("{side}/layer_norm/gamma"), tensor_f16(&[n], &[1.0; 4]));
        put(&format!("{side}/layer_norm/beta"), zeros(&[n]));
        let pre = format!("{side}/layer_0");
        let mut lin = vec![("self_attention/linear_0", 3 * n), ("self_attention/linear_1", n), ("ffn/linear_0", 4 * n)];
        if side == "decoder" {
            lin.extend([("attention/linear_0", n), ("attention/linear_1", 2 * n), ("attention/linear_2", n)]);
            put(&format!("{pre}/attention/layer_norm/gamma"), tensor_f16(&[n], &[1.0; 4]));
            put(&format!("{pre}/attention/layer_norm/beta"), zeros(&[n]));
        }
        for (name, rows) in lin {
            put(&format!("{pre}/{name}/weight"), w(rows, n));
            put(&format!("{pre}/{name}/bias"), zeros(&[rows]));
        }
        put(&format!("{pre}/ffn/linear_1/weight"), w(n, 4 * n));
        put(&format!("{pre}/ffn/linear_1/bias"), zeros(&[n]));
        for ln in ["self_attention", "ffn"] {
            put(&format!("{pre}/{ln}/layer_norm/gamma"), tensor_f16(&[n], &[1.0; 4]));
            put(&format!("{pre}/{ln}/layer_norm/beta"), zeros(&[n]));
        }
    }
    v
}

fn input_msg(r: Result<impl std::fmt::Debug, ConvertError>) -> String {
    match r {
        Err(ConvertError::Input(m)) => m,
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn reader_reads_variables_scalars_and_aliases() {
    let w: Vec<f32> = (0..24).map(|i| i as f32 / 8.0).collect();
    let bias = Tensor { shape: vec![3], dtype: DType::F32, data: [1.5f32, -2.25, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect() };
    let vars = vec![
        ("encoder/conv1/weight".to_string(), tensor_f16(&[2, 3, 4], &w)),
        ("encoder/conv1/bias".to_string(), bias.clone()),
        ("encoder/num_heads".to_string(), scalar_i16(6)),
    ];
    let buf = write_ct2(&vars, Some(&[("decoder/projection/weight", "decoder/embeddings/weight")]), 6, "WhisperSpec");
    let m = ct2::parse(&buf, "model.bin").unwrap();
    assert_eq!((m.version, m.spec_name.as_str(), m.revision), (6, "WhisperSpec", 3));
    assert_eq!(m.variables["encoder/conv1/weight"].shape, vec![2, 3, 4]);
    assert_eq!(m.variables["encoder/conv1/weight"].to_f32_vec(), w);
    assert_eq!(m.variables["encoder/conv1/bias"], bias);
    assert_eq!(m.variables["encoder/num_heads"].scalar_i64(), Some(6));
    assert_eq!(m.aliases["decoder/projection/weight"], "decoder/embeddings/weight");
    // No alias table at all is an empty one.
    let m = ct2::parse(&write_ct2(&vars, None, 6, "WhisperSpec"), "model.bin").unwrap();
    assert!(m.aliases.is_empty());
}

#[test]
fn reader_refuses_bad_files_with_the_reason() {
    let vars = vec![("encoder/num_heads".to_string(), scalar_i16(6))];
    assert!(input_msg(ct2::parse(&write_ct2(&vars, None, 4, "WhisperSpec"), "m")).contains("unsupported CTranslate2 binary version 4"));
    let buf = write_ct2(&vars, Some(&[]), 6, "WhisperSpec");
    assert!(input_msg(ct2::parse(&buf[..buf.len() - 7], "m")).contains("truncated"));
    let mut trailing = buf.clone();
    trailing.extend([1, 2, 3]);
    assert!(input_msg(ct2::parse(&trailing, "m")).contains("trailing bytes"));
    // dtype id 5 (bfloat16) is the byte right after the name and the rank (0).
    let mut bf16 = write_ct2(&vars, None, 6, "WhisperSpec");
    let at = 4 + ct2_string("WhisperSpec").len() + 8 + ct2_string("encoder/num_heads").len() + 1;
    bf16[at] = 5;
    assert!(input_msg(ct2::parse(&bf16, "m")).contains("unsupported dtype id 5"));
}

#[test]
fn split_keeps_row_order_and_refuses_uneven_or_key_bias() {
    let w = tensor_f16(&[6, 2], &(0..12).map(|i| i as f32).collect::<Vec<_>>());
    let parts = mapping::split_fused(&w, 3, "w").unwrap();
    assert_eq!(parts[1].to_f32_vec(), vec![4.0, 5.0, 6.0, 7.0]);
    assert_eq!(parts[2].shape, vec![2, 2]);
    assert!(input_msg(mapping::split_fused(&w, 4, "w")).contains("cannot split"));
    // A zero-row tensor (a hostile file may declare one) is an error, not a panic.
    assert!(input_msg(mapping::split_fused(&zeros(&[0, 4]), 3, "w")).contains("cannot split"));

    let mut v = tiny_vars(DType::F16);
    let hp = mapping::derive_hparams(&v).unwrap();
    let out = mapping::map_tensors(&v, &hp).unwrap();
    let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
    assert!(names.contains(&"encoder.blocks.0.attn.query.bias"));
    assert!(!names.contains(&"encoder.blocks.0.attn.key.bias"), "Whisper's key has no bias");
    // A non-zero key bias would be dropped silently: refused.
    let mut b = vec![0.0f32; 12];
    b[5] = 1.0;
    v.insert("encoder/layer_0/self_attention/linear_0/bias".into(), tensor_f16(&[12], &b));
    assert!(input_msg(mapping::map_tensors(&v, &hp)).contains("non-zero key bias"));
}

#[test]
fn mapping_matches_whisper_cpp_and_names_problems() {
    let v = tiny_vars(DType::F16);
    let hp = mapping::derive_hparams(&v).unwrap();
    assert_eq!(
        (hp.n_vocab, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head, hp.n_audio_layer, hp.n_text_ctx, hp.n_text_layer, hp.n_mels),
        (7, 5, 4, 2, 1, 3, 1, 2)
    );
    let out = mapping::map_tensors(&v, &hp).unwrap();
    let expected = mapping::expected_shapes(&hp);
    assert_eq!(out.len(), expected.len());
    assert_eq!(out.iter().find(|(k, _)| k == "encoder.conv2.bias").unwrap().1.shape, vec![4, 1]);

    let mut missing = v.clone();
    missing.remove("decoder/layer_0/attention/linear_2/bias");
    assert!(input_msg(mapping::map_tensors(&missing, &hp)).contains("attention/linear_2/bias"));
    let mut wrong = v.clone();
    wrong.insert("encoder/layer_0/ffn/linear_1/weight".into(), zeros(&[4, 15]));
    assert!(input_msg(mapping::map_tensors(&wrong, &hp)).contains("encoder.blocks.0.mlp.2.weight"));
    let q = tiny_vars(DType::I8);
    assert!(input_msg(mapping::map_tensors(&q, &mapping::derive_hparams(&q).unwrap())).contains("quantized"));
}

#[test]
fn tiny_whisper_shapes_and_types_match_whisper_cpp() {
    let hp = mapping::Hparams {
        n_vocab: 51864,
        n_audio_ctx: 1500,
        n_audio_state: 384,
        n_audio_head: 6,
        n_audio_layer: 4,
        n_text_ctx: 448,
        n_text_state: 384,
        n_text_head: 6,
        n_text_layer: 4,
        n_mels: 80,
    };
    let s = mapping::expected_shapes(&hp);
    // whisper.cpp: 11 top-level tensors + 15 per encoder block + 24 per decoder block.
    assert_eq!(s.len(), 11 + 15 * 4 + 24 * 4);
    assert_eq!(s["encoder.conv1.bias"], vec![384, 1]);
    assert_eq!(s["decoder.blocks.3.cross_attn.key.weight"], vec![384, 384]);
    assert_eq!(whisper_ggml::ggml_type_for("encoder.conv1.bias", 2), whisper_ggml::GGML_F32);
    assert_eq!(whisper_ggml::ggml_type_for("decoder.positional_embedding", 2), whisper_ggml::GGML_F32);
    assert_eq!(whisper_ggml::ggml_type_for("x.mlp.0.bias", 1), whisper_ggml::GGML_F32);
    assert_eq!(whisper_ggml::ggml_type_for("encoder.conv1.weight", 3), whisper_ggml::GGML_F16);
}

#[test]
fn byte_alphabet_round_trips_tokens() {
    let table = vocab::gpt2_bytes_to_unicode();
    assert_eq!(table.len(), 256);
    let decoder: BTreeMap<char, u8> = table.iter().map(|(&b, &c)| (c, b)).collect();
    assert_eq!(decoder.len(), 256, "a bijection");
    // 'Ġ' (U+0120) stands for the space byte, 'Ċ' for '\n'; 'é' is spelled with 0xC3 0xA9's chars.
    assert_eq!(vocab::decode_token("Ġthe", &decoder).unwrap(), b" the");
    assert_eq!(vocab::decode_token("Ċ", &decoder).unwrap(), b"\n");
    assert_eq!(vocab::decode_token("Ã©", &decoder).unwrap(), "é".as_bytes());
    assert!(input_msg(vocab::decode_token("a\u{4e00}", &decoder)).contains("byte alphabet"));
    let tok = r#"{"model":{"type":"BPE","vocab":{"!":0,"Ġa":1,"<|endoftext|>":2}},
        "added_tokens":[{"id":2,"content":"<|endoftext|>","special":true},
                        {"id":3,"content":"<|startoftranscript|>","special":true}]}"#;
    assert_eq!(vocab::load_base_vocab(tok, Path::new("t.json")).unwrap(), vec![b"!".to_vec(), b" a".to_vec()]);
    let gap = r#"{"model":{"vocab":{"!":0,"a":2}}}"#;
    assert!(input_msg(vocab::load_base_vocab(gap, Path::new("t.json"))).contains("not contiguous"));
}

#[test]
fn mel_filters_match_librosa() {
    let f = mel::filterbank(16_000, 400, 80);
    assert_eq!(f.len(), 80 * 201);
    assert!(f.iter().all(|&v| v >= 0.0 && !v.is_sign_negative()), "no negatives, no -0.0");
    // Values of librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) (OpenAI's mel_filters.npz).
    for (i, j, want) in [
        (0, 0, 0.0),
        (0, 1, 0.024_862_594_902_515_41),
        (1, 1, 0.001_990_821_911_022_067),
        (1, 2, 0.022_871_771_827_340_126),
        (9, 10, 0.006_945_197_004_824_877),
        (39, 41, 0.011_486_922_390_758_991),
        (69, 131, 0.004_875_534_214_079_38),
        (79, 199, 0.000_448_759_004_939_347_5),
    ] {
        let got = f[i * 201 + j] as f64;
        assert!((got - want).abs() < 1e-8, "[{i},{j}] {got} vs {want}");
    }
    // Peaks never move down, and sit within one 40 Hz bin of the filter's centre.
    let peaks: Vec<usize> = (0..80).map(|i| (0..201).max_by(|&a, &b| f[i * 201 + a].total_cmp(&f[i * 201 + b])).unwrap()).collect();
    assert!(peaks.windows(2).all(|w| w[1] >= w[0]));
    assert_eq!(peaks[0], 1);
    // Slaney norm: on a fine grid each triangle has unit area in Hz.
    let fine = mel::filterbank(16_000, 40_000, 80);
    for i in 0..80 {
        let area: f64 = fine[i * 20_001..(i + 1) * 20_001].iter().map(|&v| v as f64).sum::<f64>() * 0.4;
        assert!((area - 1.0).abs() < 2e-3, "filter {i} area {area}");
    }
    assert!((mel::hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    for hz in [0.0, 500.0, 1000.0, 4000.0, 8000.0] {
        assert!((mel::mel_to_hz(mel::hz_to_mel(hz)) - hz).abs() <= 1e-9 * hz.max(1.0));
    }
}

/// Write a tiny CT2 directory and convert it; the ggml file parses back to what was put in.
#[test]
fn converts_a_tiny_model_into_the_layout_whisper_cpp_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = tiny_vars(DType::F16);
    let emb: Vec<f32> = (0..28).map(|i| i as f32 * 0.5).collect();
    v.insert("decoder/embeddings/weight".into(), tensor_f16(&[7, 4], &emb));
    let vars: Vec<(String, Tensor)> = v.into_iter().collect();
    std::fs::write(dir.path().join("model.bin"), write_ct2(&vars, Some(&[]), 6, "WhisperSpec")).unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), r#"{"model":{"vocab":{"a":0,"Ġb":1}}}"#).unwrap();
    std::fs::write(dir.path().join("vocabulary.txt"), "a\nb\nc\nd\ne\nf\ng\n").unwrap();
    let out = dir.path().join("ggml.bin");
    let hp = whisper_ggml::convert(dir.path(), &out).unwrap();
    assert_eq!(hp.n_vocab, 7);

    let b = std::fs::read(&out).unwrap();
    let i32_at = |o: usize| i32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(i32_at(0) as u32, whisper_ggml::GGML_MAGIC);
    assert_eq!((1..=11).map(|k| i32_at(4 * k)).collect::<Vec<_>>(), vec![7, 5, 4, 2, 1, 3, 4, 2, 1, 2, 1]);
    assert_eq!((i32_at(48), i32_at(52)), (2, 201));
    let mut o = 56 + 2 * 201 * 4;
    assert_eq!(i32_at(o), 2, "two base tokens");
    assert_eq!((i32_at(o + 4), &b[o + 8..o + 9]), (1, &b"a"[..]));
    assert_eq!((i32_at(o + 9), &b[o + 13..o + 15]), (2, &b" b"[..]));
    o += 15;
    let mut names = Vec::new();
    while o < b.len() {
        let (n_dims, name_len, ttype) = (i32_at(o) as usize, i32_at(o + 4) as usize, i32_at(o + 8));
        let dims: Vec<usize> = (0..n_dims).map(|k| i32_at(o + 12 + 4 * k) as usize).collect();
        let name_at = o + 12 + 4 * n_dims;
        let name = String::from_utf8(b[name_at..name_at + name_len].to_vec()).unwrap();
        let elems: usize = dims.iter().product();
        let data_at = name_at + name_len;
        let size = if ttype == whisper_ggml::GGML_F32 { 4 } else { 2 };
        if name == "decoder.token_embedding.weight" {
            assert_eq!((dims.clone(), ttype), (vec![4, 7], whisper_ggml::GGML_F16), "ne is innermost first");
            assert_eq!(b[data_at..data_at + elems * 2], f16_bytes(&emb)[..]);
        }
        if name == "encoder.conv1.bias" {
            assert_eq!((dims.clone(), ttype), (vec![1, 4], whisper_ggml::GGML_F32));
        }
        names.push(name);
        o = data_at + elems * size;
    }
    assert_eq!(o, b.len(), "the last tensor ends the file");
    assert_eq!(names.len(), 11 + 15 + 24);

    // A tokenizer of another model (vocabulary.txt disagrees) is refused, and no file is left.
    std::fs::write(dir.path().join("vocabulary.txt"), "a\nb\n").unwrap();
    let out2 = dir.path().join("ggml2.bin");
    assert!(input_msg(whisper_ggml::convert(dir.path(), &out2)).contains("vocabulary.txt has 2 tokens"));
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(input_msg(whisper_ggml::convert(dir.path(), &out2)).contains("missing required file config.json"));
    assert!(!out2.exists());
}

/// The real package: Whisper tiny.en from its pinned wheel converts to the pinned ggml bytes
/// (the file whisper-rs loads in the asr tests).
#[test]
fn real_whisper_tiny_en_converts_to_the_pinned_bytes() {
    let manifest = assets::Manifest::builtin().unwrap();
    let pkg = manifest.packages.iter().find(|p| p.id == "whisper-ct2").unwrap();
    let derived = manifest.derived.iter().find(|d| d.id == "whisper-ggml").unwrap();
    // Absolute (a relative $FIRSTWORD_CACHE is relative to the working directory) for testkit.
    let wheel = std::path::absolute(assets::setup::default_cache_dir().join(&pkg.file)).unwrap();
    if !testkit::present(&[&wheel.to_string_lossy()]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let members = pkg.extract.iter().map(|e| (e.member.clone(), dir.path().join(Path::new(&e.to).file_name().unwrap()))).collect();
    assets::archive::extract(pkg.registry, &wheel, &members).unwrap();
    let out = dir.path().join("ggml.bin");
    let hp = whisper_ggml::convert(dir.path(), &out).unwrap();
    assert_eq!((hp.n_vocab, hp.n_audio_layer, hp.n_text_layer, hp.n_audio_state), (51864, 4, 4, 384));
    assert_eq!(assets::registry::sha256_file(&out).unwrap(), derived.sha256);
}
