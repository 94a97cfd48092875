//! WAV decoding: every supported format, and a table of broken files that must each give
//! their own typed error without disturbing the next good file.

use std::io::Cursor;

use audio::{decode_wav, resample, AudioError};

/// A hand-built RIFF/WAVE file: `fmt ` chunk fields as given, `data` chunk whose size field is
/// `data_len_field` (which may lie) followed by `data`.
fn wav_bytes(format_tag: u16, channels: u16, rate: u32, bits: u16, data_len_field: u32, data: &[u8]) -> Vec<u8> {
    let block_align = channels.wrapping_mul(bits / 8);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&format_tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(block_align as u32).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len_field.to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn f32_data(vals: &[f32]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn good_file() -> Vec<u8> {
    let data: Vec<u8> = (0..1600i16).flat_map(|i| ((i % 100) * 100).to_le_bytes()).collect();
    wav_bytes(1, 1, 16_000, 16, data.len() as u32, &data)
}

#[test]
fn broken_files_each_give_their_error_and_the_next_file_still_works() {
    let pcm16 = vec![0u8; 200];
    type Case = (&'static str, Vec<u8>, fn(&AudioError) -> bool);
    let cases: Vec<Case> = vec![
        ("empty file", vec![], |e| matches!(e, AudioError::Empty)),
        ("not a wav", b"ID3\x04 this is an mp3, honest".to_vec(), |e| matches!(e, AudioError::NotWav(_))),
        ("text file", b"hello world, definitely not audio".to_vec(), |e| matches!(e, AudioError::NotWav(_))),
        ("cut inside fmt chunk", wav_bytes(1, 1, 16_000, 16, 0, &[])[..24].to_vec(), |e| matches!(e, AudioError::BadHeader(_))),
        ("header only", wav_bytes(1, 1, 16_000, 16, 0, &[]), |e| matches!(e, AudioError::NoSamples)),
        ("truncated data", wav_bytes(1, 1, 16_000, 16, 32_000, &pcm16), |e| {
            matches!(e, AudioError::Truncated { expected: 16_000, got: 100 })
        }),
        ("zero channels", wav_bytes(1, 0, 16_000, 16, 200, &pcm16), |e| matches!(e, AudioError::BadHeader(_))),
        ("nine channels", wav_bytes(1, 9, 16_000, 16, 198, &pcm16[..198]), |e| matches!(e, AudioError::BadHeader(_))),
        ("zero sample rate", wav_bytes(1, 1, 0, 16, 200, &pcm16), |e| matches!(e, AudioError::BadHeader(_))),
        ("absurd sample rate", wav_bytes(1, 1, 4_000_000_000, 16, 200, &pcm16), |e| matches!(e, AudioError::BadHeader(_))),
        ("64-bit float", wav_bytes(3, 1, 16_000, 64, 200, &pcm16), |e| matches!(e, AudioError::Unsupported(_) | AudioError::BadHeader(_))),
        ("NaN samples", wav_bytes(3, 1, 16_000, 32, 12, &f32_data(&[0.1, f32::NAN, 0.2])), |e| {
            matches!(e, AudioError::NonFinite { index: 1, .. })
        }),
        ("infinite samples", wav_bytes(3, 1, 16_000, 32, 8, &f32_data(&[0.1, f32::INFINITY])), |e| {
            matches!(e, AudioError::NonFinite { index: 1, .. })
        }),
        ("huge data length", wav_bytes(1, 1, 16_000, 16, u32::MAX - 1, &pcm16), |e| {
            matches!(e, AudioError::Truncated { expected: 2_147_483_647, got: 100 })
        }),
        ("odd data length", wav_bytes(1, 1, 16_000, 16, 201, &pcm16), |e| matches!(e, AudioError::BadHeader(_))),
    ];
    for (name, bytes, check) in cases {
        match decode_wav(&bytes) {
            Ok(w) => panic!("{name}: decoded {} samples, expected an error", w.mono.len()),
            Err(e) => {
                assert!(check(&e), "{name}: wrong error: {e:?}");
                assert!(!e.to_string().is_empty());
            }
        }
        let good = decode_wav(&good_file()).unwrap_or_else(|e| panic!("good file after '{name}' failed: {e}"));
        assert_eq!(good.mono.len(), 1600);
    }
}

/// Writes a 440 Hz tone in the given format with hound and checks the decode.
fn tone_roundtrip(rate: u32, channels: u16, bits: u16, float: bool) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
    };
    let n = rate as usize / 2; // 0.5 s
    let mut buf = Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        for i in 0..n {
            let v = (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 0.5;
            for _ in 0..channels {
                if float {
                    w.write_sample(v).unwrap();
                } else {
                    let max = ((1i64 << (bits - 1)) - 1) as f32;
                    w.write_sample((v * max) as i32).unwrap();
                }
            }
        }
        w.finalize().unwrap();
    }
    let d = decode_wav(buf.get_ref()).unwrap_or_else(|e| panic!("{rate} Hz {channels} ch {bits} bit: {e}"));
    assert_eq!((d.rate_hz, d.channels, d.bits_per_sample, d.float), (rate, channels, bits, float));
    assert_eq!(d.mono.len(), n);
    let peak = d.mono.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!((peak - 0.5).abs() < 0.02, "{bits}-bit peak {peak}");
    let y = resample::resample(&d.mono, rate, 16_000).unwrap();
    assert_eq!(y.len(), 8000);
}

#[test]
fn every_supported_format_decodes_and_resamples() {
    tone_roundtrip(8_000, 1, 8, false);
    tone_roundtrip(16_000, 1, 16, false);
    tone_roundtrip(44_100, 2, 16, false);
    tone_roundtrip(48_000, 2, 24, false);
    tone_roundtrip(22_050, 1, 32, false);
    tone_roundtrip(48_000, 6, 32, true);
    tone_roundtrip(96_000, 8, 16, false);
}

#[test]
fn write_then_read_is_lossless_to_16_bit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.wav");
    let x: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.01).sin() * 0.8).collect();
    audio::write_wav(&path, &x, 22_050).unwrap();
    let d = audio::read_wav(&path).unwrap();
    assert_eq!(d.rate_hz, 22_050);
    assert!(d.mono.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1.0 / 16_000.0));
    assert!(!dir.path().join("x.wav.part").exists());
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let e = audio::read_wav("/nonexistent/question.wav").unwrap_err();
    assert!(matches!(e, AudioError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/question.wav"));
}
