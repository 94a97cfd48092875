//! Zero-shot multiple choice scored the way lm-eval-harness (EleutherAI, v0.4
//! `lm_eval/api/task.py` `process_results`, `lm_eval/models/huggingface.py` `_encode_pair` and
//! `_loglikelihood_tokens`) scores it:
//!
//! - each choice is a continuation `" " + choice` of the context (the `target_delimiter`);
//!   trailing spaces of the context move to the front of the continuation;
//! - context and continuation are encoded together, and the continuation's tokens are the tail
//!   of `encode(context + continuation)` after `len(encode(context))` tokens;
//! - LL = Σ log p(continuation token | everything before it), natural log;
//! - `acc`: argmax of LL is the gold choice; `acc_norm`: argmax of LL / `len(choice)`, the
//!   choice's length in characters (Python `len`, Unicode scalar values, without the leading
//!   space: `completion_len = [float(len(i)) for i in choices]`); ties go to the first choice
//!   (numpy's argmax);
//! - too long inputs keep their last `max_len + 1` tokens (left truncation of the context).
//!
//! The model side is the [`LogProbModel`] trait, so the harness is tested on hand-computed
//! log-probabilities as well as on real models.

use anyhow::{ensure, Result};
use serde::Serialize;

use super::mc_data::McItem;

/// A causal LM that can score continuations (natural-log probabilities).
pub trait LogProbModel {
    /// Token ids of plain text, no special tokens.
    fn encode(&self, text: &str) -> Result<Vec<u32>>;
    /// A token put before every context (`None`: no prefix).
    fn prefix_token(&self) -> Option<u32>;
    /// Most positions one forward pass may hold (the input is context + continuation − 1).
    fn max_len(&self) -> usize;
    /// For each continuation, Σ_j log p(cont[j] | context, cont[..j]). `context` is non-empty,
    /// every continuation is non-empty and `context.len() + cont.len() - 1 <= max_len()`.
    fn continuation_log_likelihoods(&mut self, context: &[u32], continuations: &[Vec<u32>]) -> Result<Vec<f64>>;
}

/// The scored item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemScore {
    /// Item id (`<task>_<split>/<doc_id>`).
    pub id: String,
    /// Log-likelihood of each choice (nats).
    pub lls: Vec<f64>,
    /// Index of the gold choice.
    pub gold: usize,
    /// argmax LL.
    pub pred: usize,
    /// argmax LL / choice length in characters.
    pub pred_norm: usize,
    /// Continuation tokens of each choice.
    pub cont_tokens: Vec<usize>,
}

impl ItemScore {
    /// Whether the item is right by LL per character (`norm`) or by raw LL.
    pub fn right(&self, norm: bool) -> bool {
        (if norm { self.pred_norm } else { self.pred }) == self.gold
    }
    /// 1 when `pred` is gold.
    pub fn acc(&self) -> f64 {
        f64::from(u8::from(self.right(false)))
    }
    /// 1 when `pred_norm` is gold.
    pub fn acc_norm(&self) -> f64 {
        f64::from(u8::from(self.right(true)))
    }
}

/// Context and continuation token ids as lm-eval's `_encode_pair` makes them (module doc);
/// the model's prefix token, if any, starts the context.
pub fn encode_pair(model: &dyn LogProbModel, context: &str, continuation: &str) -> Result<(Vec<u32>, Vec<u32>)> {
    let trimmed = context.trim_end();
    let (context, continuation) = if trimmed.len() < context.len() {
        (trimmed.to_string(), format!("{}{continuation}", &context[trimmed.len()..]))
    } else {
        (context.to_string(), continuation.to_string())
    };
    let whole = model.encode(&format!("{context}{continuation}"))?;
    let ctx = model.encode(&context)?;
    let cont = whole.get(ctx.len()..).unwrap_or_default().to_vec();
    let mut with_prefix: Vec<u32> = model.prefix_token().into_iter().collect();
    with_prefix.extend(ctx);
    Ok((with_prefix, cont))
}

/// Index of the largest value; the first one on ties (numpy's argmax).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Scores one item: LL of every choice, `acc` and `acc_norm` predictions.
pub fn score_item(model: &mut dyn LogProbModel, item: &McItem) -> Result<ItemScore> {
    ensure!(!item.choices.is_empty(), "{}: no choices", item.id);
    let mut ctx = Vec::new();
    let mut conts = Vec::with_capacity(item.choices.len());
    for choice in &item.choices {
        let (c, cont) = encode_pair(model, &item.context, &format!(" {choice}"))?;
        ensure!(!cont.is_empty(), "{}: choice {choice:?} encodes to no tokens", item.id);
        ensure!(ctx.is_empty() || ctx == c, "{}: the context encodes differently per choice", item.id);
        ctx = c;
        conts.push(cont);
    }
    let max = model.max_len();
    let fits = |cont: &Vec<u32>| ctx.len() + cont.len() <= max + 1;
    let mut lls = vec![0.0; conts.len()];
    // Choices that fit share one pass over the context; the others each get the context's
    // tail that leaves room for them (lm-eval's per-request left truncation).
    let (short, long): (Vec<usize>, Vec<usize>) = (0..conts.len()).partition(|&i| fits(&conts[i]));
    if !short.is_empty() {
        let batch: Vec<Vec<u32>> = short.iter().map(|&i| conts[i].clone()).collect();
        let got = model.continuation_log_likelihoods(&ctx, &batch)?;
        for (&i, ll) in short.iter().zip(got) {
            lls[i] = ll;
        }
    }
    for i in long {
        let mut cont = conts[i].clone();
        if cont.len() > max {
            cont.drain(..cont.len() - max);
        }
        let keep = (max + 1 - cont.len()).min(ctx.len());
        let got = model.continuation_log_likelihoods(&ctx[ctx.len() - keep..], &[cont])?;
        lls[i] = got[0];
    }
    let normed: Vec<f64> = lls.iter().zip(&item.choices).map(|(ll, c)| ll / c.chars().count().max(1) as f64).collect();
    Ok(ItemScore {
        id: item.id.clone(),
        pred: argmax(&lls),
        pred_norm: argmax(&normed),
        gold: item.gold,
        cont_tokens: conts.iter().map(Vec::len).collect(),
        lls,
    })
}

/// Mean accuracies over a task's items.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Accuracy {
    /// Items scored.
    pub n: usize,
    /// Mean of `acc` (0..1).
    pub acc: f64,
    /// Mean of `acc_norm` (0..1).
    pub acc_norm: f64,
}

/// Aggregates item scores.
pub fn accuracy(scores: &[ItemScore]) -> Accuracy {
    let n = scores.len();
    if n == 0 {
        return Accuracy::default();
    }
    Accuracy {
        n,
        acc: scores.iter().map(ItemScore::acc).sum::<f64>() / n as f64,
        acc_norm: scores.iter().map(ItemScore::acc_norm).sum::<f64>() / n as f64,
    }
}

/// Natural-log softmax of one logits row evaluated at `target` (f64 accumulation).
pub fn log_softmax_at(row: &[f32], target: u32) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    row[target as usize] as f64 - max - sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-level "model": one token per byte, log p(token b) = -(b mod 128)/100 whatever the
    /// context, so every LL below is a sum done by hand. Records what it was asked.
    struct ByteModel {
        prefix: Option<u32>,
        max_len: usize,
        calls: Vec<(Vec<u32>, Vec<Vec<u32>>)>,
    }

    impl LogProbModel for ByteModel {
        fn encode(&self, text: &str) -> Result<Vec<u32>> {
            Ok(text.bytes().map(u32::from).collect())
        }
        fn prefix_token(&self) -> Option<u32> {
            self.prefix
        }
        fn max_len(&self) -> usize {
            self.max_len
        }
        fn continuation_log_likelihoods(&mut self, context: &[u32], conts: &[Vec<u32>]) -> Result<Vec<f64>> {
            assert!(conts.iter().all(|c| context.len() + c.len() - 1 <= self.max_len));
            self.calls.push((context.to_vec(), conts.to_vec()));
            Ok(conts.iter().map(|c| c.iter().map(|&b| -((b % 128) as f64) / 100.0).sum()).collect())
        }
    }

    fn model() -> ByteModel {
        ByteModel { prefix: Some(0), max_len: 64, calls: Vec::new() }
    }

    fn item(context: &str, choices: &[&str], gold: usize) -> McItem {
        McItem { id: "t/0".into(), doc_id: 0, context: context.into(), choices: choices.iter().map(|c| c.to_string()).collect(), gold }
    }

    #[test]
    fn hand_computed_ll_acc_and_acc_norm_disagree() {
        let mut m = model();
        // " no": bytes 32+110+111 = 253 → LL -2.53; per char ("no", 2): -1.265.
        // " yes indeed": 32+121+101+115+32+105+110+100+101+101+100 = 1018 → -10.18; per char (10): -1.018.
        let s = score_item(&mut m, &item("Q?", &["no", "yes indeed"], 1)).unwrap();
        assert!((s.lls[0] - -2.53).abs() < 1e-9 && (s.lls[1] - -10.18).abs() < 1e-9, "{:?}", s.lls);
        assert_eq!((s.pred, s.pred_norm), (0, 1), "raw LL favours the short choice, per-char LL the long one");
        assert_eq!((s.acc(), s.acc_norm()), (0.0, 1.0));
        assert_eq!(s.cont_tokens, [3, 11]);
        // One shared pass: the prefix token then the context bytes.
        assert_eq!(m.calls.len(), 1);
        assert_eq!(m.calls[0].0, [0, b'Q' as u32, b'?' as u32]);
        let acc = accuracy(&[s.clone(), s]);
        assert_eq!((acc.n, acc.acc, acc.acc_norm), (2, 0.0, 1.0));
    }

    #[test]
    fn acc_norm_counts_characters_not_bytes() {
        let mut m = model();
        // "é" is 2 bytes (195, 169 → costs 67, 41) but 1 character: LL -(32+67+41)/100 = -1.40,
        // per char -1.40, per byte -0.70. "zz": -(32+122+122)/100 = -2.76, per char -1.38.
        // Per character "zz" wins; per byte "é" would.
        let s = score_item(&mut m, &item("x", &["é", "zz"], 1)).unwrap();
        assert!((s.lls[0] - -1.40).abs() < 1e-9 && (s.lls[1] - -2.76).abs() < 1e-9, "{:?}", s.lls);
        assert_eq!((s.pred, s.pred_norm), (0, 1));
    }

    #[test]
    fn trailing_context_space_moves_to_the_continuation() {
        let m = model();
        let (ctx, cont) = encode_pair(&m, "Answer: ", " yes").unwrap();
        assert_eq!(ctx, [0, 65, 110, 115, 119, 101, 114, 58]);
        assert_eq!(cont, [32, 32, 121, 101, 115]);
        let m = ByteModel { prefix: None, ..model() };
        let (ctx, _) = encode_pair(&m, "A", " b").unwrap();
        assert_eq!(ctx, [65]);
    }

    #[test]
    fn ties_go_to_the_first_choice() {
        let mut m = model();
        let s = score_item(&mut m, &item("x", &["ab", "ba"], 1)).unwrap();
        assert_eq!((s.pred, s.pred_norm), (0, 0));
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }

    #[test]
    fn too_long_inputs_keep_the_context_tail() {
        let mut m = ByteModel { max_len: 8, ..model() };
        // Context: prefix + 10 bytes = 11 tokens; " ab" is 3 tokens: keep 8 + 1 - 3 = 6.
        let s = score_item(&mut m, &item("0123456789", &["ab"], 0)).unwrap();
        assert!((s.lls[0] - -(32.0 + 97.0 + 98.0) / 100.0).abs() < 1e-9);
        assert_eq!(m.calls[0].0, "456789".bytes().map(u32::from).collect::<Vec<_>>());
    }

    #[test]
    fn log_softmax_matches_direct_computation() {
        let row = [1.0f32, 2.0, 3.0];
        let z: f64 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
        assert!((log_softmax_at(&row, 1) - (2.0 - z)).abs() < 1e-12);
    }
}
