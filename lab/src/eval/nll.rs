//! Negative log-likelihood of a reference answer's opening under the μLM: how probable the
//! GPT-4 reference's first words are as the μLM's own opener (lower is better; nats per token).

use anyhow::{bail, Context, Result};

/// NLL per token (nats): the mean over `targets` of `-log softmax(logits[i])[targets[i]]`,
/// where row `i` of `logits` is the distribution that predicts `targets[i]`.
pub fn nll_per_token(logits: &[Vec<f32>], targets: &[u32]) -> Result<f64> {
    if logits.len() != targets.len() || targets.is_empty() {
        bail!("{} logit rows for {} targets", logits.len(), targets.len());
    }
    let mut total = 0.0;
    for (row, &t) in logits.iter().zip(targets) {
        let Some(&x) = row.get(t as usize) else { bail!("target {t} outside a vocabulary of {}", row.len()) };
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        total += lse - x as f64;
    }
    Ok(total / targets.len() as f64)
}

/// NLL of one reference opening.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct RefNll {
    /// Mean NLL per reference token (nats).
    pub nll_per_token: f64,
    /// Reference tokens scored.
    pub tokens: usize,
}

/// NLL per token of `reference` (already cut to its first words) as the answer to `query`:
/// the prompt is the opener's own (`encode_chat` of the user turn, ending with the generation
/// prefix), followed by the reference's tokens encoded as an assistant turn's content (trimmed).
/// None when prompt and reference do not fit the model's context (`max_seq_len`).
pub fn reference_nll(model: &lm::Model, tok: &lm::ChatTokenizer, query: &str, reference: &str) -> Result<Option<RefNll>> {
    let content = if tok.mulm().chat_template.trim_content { reference.trim() } else { reference };
    let target = tok.encode_text(content).context("tokenizing the reference")?;
    if target.is_empty() {
        bail!("empty reference");
    }
    let max_seq = model.config().max_seq_len;
    let prompt = match tok.encode_chat(&[lm::ChatMessage::user(query)], max_seq.saturating_sub(target.len())) {
        Ok(p) => p.ids,
        Err(lm::LmError::PromptTooLong { .. }) => return Ok(None),
        Err(e) => return Err(e).context("encoding the prompt"),
    };
    let mut ids = prompt.clone();
    ids.extend_from_slice(&target);
    let mut cache = model.new_cache()?;
    let logits = model.forward(&ids, &mut cache, true).context("μLM forward")?;
    let rows: Vec<Vec<f32>> = logits.to_vec2().context("logits to host")?;
    // Row p predicts token p + 1: rows prompt.len()-1 .. ids.len()-2 predict the reference.
    let first = prompt.len() - 1;
    let nll = nll_per_token(&rows[first..first + target.len()], &target)?;
    Ok(Some(RefNll { nll_per_token: nll, tokens: target.len() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_nll() {
        // Row 1: logits [0, ln 3] -> p(1) = 3/4. Row 2: uniform over 4 -> p = 1/4.
        let logits = vec![vec![0.0, 3f32.ln()], vec![7.0, 7.0, 7.0, 7.0]];
        let got = nll_per_token(&logits, &[1, 2]).unwrap();
        let want = (-(0.75f64).ln() + 4f64.ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // Large logits stay finite (log-sum-exp).
        let big = nll_per_token(&[vec![1000.0, 0.0]], &[0]).unwrap();
        assert!(big.abs() < 1e-6);
        assert!(nll_per_token(&[vec![0.0]], &[3]).is_err());
        assert!(nll_per_token(&[], &[]).is_err());
    }

    #[test]
    fn reference_nll_matches_a_manual_forward() {
        // The test preset's random model: score "hello world" after a query, then check the
        // same number from single-position forwards (a different code path through the cache).
        let dir = tempfile::tempdir().unwrap();
        lm::dev::write_dev_checkpoint(dir.path(), "64-2", &lm::Preset::from_name("64-2").unwrap().config(), 3).unwrap();
        let (model, mulm) = lm::load_dir(dir.path()).unwrap();
        let tok = lm::ChatTokenizer::from_file(&dir.path().join("tokenizer.json"), &mulm).unwrap();
        let r = reference_nll(&model, &tok, "What is it?", " hello world ").unwrap().unwrap();
        let prompt = tok.encode_chat(&[lm::ChatMessage::user("What is it?")], 1000).unwrap().ids;
        let target = tok.encode_text("hello world").unwrap();
        assert_eq!(r.tokens, target.len());
        let mut cache = model.new_cache().unwrap();
        let mut rows = Vec::new();
        let mut last: Vec<f32> = model.forward(&prompt, &mut cache, false).unwrap().to_vec1().unwrap();
        for &t in &target {
            rows.push(last);
            last = model.forward(&[t], &mut cache, false).unwrap().to_vec1().unwrap();
        }
        let want = nll_per_token(&rows, &target).unwrap();
        assert!((r.nll_per_token - want).abs() < 1e-3, "{} vs {want}", r.nll_per_token);
        assert!(r.nll_per_token > 0.0);
        // A prompt beyond the 64-2 preset's 256-token context is skipped, not an error.
        let long = "word ".repeat(400);
        assert!(reference_nll(&model, &tok, &long, "hello").unwrap().is_none());
    }
}
