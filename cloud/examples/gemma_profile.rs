//! Times Gemma3 forward passes (prefill and single-token decode) on the CPU, then decode
//! speed after a short and a long prompt (where the KV cache is large).
//! `CANDLE_NUM_THREADS` sets candle's matmul threads (default: all cores).
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use lm::gemma3::Gemma3;

fn main() -> candle_core::Result<()> {
    let mut f = std::fs::File::open("models/gemma/gemma-3-270m-q4_k_m.gguf")?;
    let ct = gguf_file::Content::read(&mut f)?;
    for (name, info) in ct.tensor_infos.iter().filter(|(n, _)| n.starts_with("token_embd") || n.starts_with("blk.0.")) {
        println!("{name}: {:?} {:?}", info.ggml_dtype, info.shape);
    }
    let t = Instant::now();
    let mut m = Gemma3::from_gguf(&ct, &mut f, &Device::Cpu, 1100)?;
    println!("load {:?}, threads {}", t.elapsed(), candle_core::utils::get_num_threads());
    let toks: Vec<u32> = (1000..1150).collect();
    let t = Instant::now();
    let x = Tensor::new(toks.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
    m.forward(&x, 0)?;
    println!("prefill 150 tokens: {:?}", t.elapsed());
    let mut times = vec![];
    for i in 0..6 {
        let x = Tensor::new(&[1234u32], &Device::Cpu)?.unsqueeze(0)?;
        let t = Instant::now();
        m.forward(&x, 150 + i)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!("decode ms/token: {:?}", times.iter().map(|t| *t as u32).collect::<Vec<_>>());
    // Decode speed after a prompt of `ctx` tokens: 16 greedy-free steps (a fixed token),
    // median and mean over the steps.
    for ctx in [150usize, 1000] {
        let toks: Vec<u32> = (0..ctx as u32).map(|i| 1000 + i % 5000).collect();
        m.forward(&Tensor::new(toks.as_slice(), &Device::Cpu)?.unsqueeze(0)?, 0)?;
        let mut ms = vec![];
        for i in 0..16 {
            let x = Tensor::new(&[1234u32], &Device::Cpu)?.unsqueeze(0)?;
            let t = Instant::now();
            m.forward(&x, ctx + i)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        println!("decode after {ctx} tokens: median {median:.1} ms/token, mean {mean:.1} ms ({:.1} tokens/s)", 1e3 / mean);
    }
    use candle_core::Module;
    let w = ct.tensor(&mut f, "token_embd.weight", &Device::Cpu)?;
    let mm = candle_core::quantized::QMatMul::from_qtensor(w)?;
    let x = Tensor::randn(0f32, 1., (1, 640), &Device::Cpu)?;
    for _ in 0..3 {
        let t = Instant::now();
        mm.forward(&x)?;
        println!("lm head (Q8_0 262144x640) matmul: {:?}", t.elapsed());
    }
    let w = ct.tensor(&mut f, "blk.0.ffn_down.weight", &Device::Cpu)?;
    let mm = candle_core::quantized::QMatMul::from_qtensor(w)?;
    let x = Tensor::randn(0f32, 1., (1, 2048), &Device::Cpu)?;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..18 {
            mm.forward(&x)?;
        }
        println!("18x ffn_down Q6K matmul: {:?}", t.elapsed());
    }
    Ok(())
}
