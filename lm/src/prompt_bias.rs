//! The opener's prompt bias: a pull toward restating the question's own words ("Why is the sky
//! blue?" → "The sky …"), for μLMs whose openers have an answer's form more often than its topic
//! (issue 12). Logits of the tokens that start the question's content words get a fixed number
//! of nats added while the opener is written, until the opener has used the word; for the
//! sampler only, so the gate still scores the model's own log-probabilities. The strength is
//! `opener.prompt_bias` in mulm.json, chosen on validation prompts.

use crate::error::Result;
use crate::tokenizer::ChatTokenizer;

/// Letters a word's first token must hold to be biased: a bias on "s" or " th" would pull toward
/// every word that starts so.
pub const MIN_LETTERS: usize = 3;

/// The biased words of one question and what is left of them.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptBias {
    /// Per content word still unused: the ids of its first token in each written form.
    words: Vec<Vec<u32>>,
    /// Nats added to each of those logits.
    nats: f32,
}

impl PromptBias {
    /// No bias.
    pub fn none() -> Self {
        Self { words: Vec::new(), nats: 0.0 }
    }

    /// A bias of `nats` on each group of token ids (one group per word). Empty groups and a
    /// zero bias give [`PromptBias::none`].
    pub fn from_groups(words: Vec<Vec<u32>>, nats: f32) -> Self {
        if nats == 0.0 {
            return Self::none();
        }
        Self { words: words.into_iter().filter(|w| !w.is_empty()).collect(), nats }
    }

    /// The bias for `question`: per content word ([`crate::gate::content_words`]), the first
    /// token of the word as it would start the opener or follow a space, in lower case and
    /// capitalized, where that token holds ≥ [`MIN_LETTERS`] letters. Errors: a tokenizer
    /// failure.
    pub fn for_question(tok: &ChatTokenizer, question: &str, nats: f32) -> Result<Self> {
        if nats == 0.0 {
            return Ok(Self::none());
        }
        let mut words = Vec::new();
        for w in crate::gate::content_words(question) {
            let mut chars = w.chars();
            let capital: String = chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default();
            let mut ids = Vec::new();
            for form in [w.clone(), format!(" {w}"), capital.clone(), format!(" {capital}")] {
                let Some(&first) = tok.encode_text(&form)?.first() else { continue };
                if !ids.contains(&first) && tok.decode(&[first])?.chars().filter(|c| c.is_alphabetic()).count() >= MIN_LETTERS {
                    ids.push(first);
                }
            }
            words.push(ids);
        }
        Ok(Self::from_groups(words, nats))
    }

    /// (token id, nats) for the sampler ([`crate::decode::Decoder::step_steered`]), each id once.
    pub fn logit_bias(&self) -> Vec<(u32, f32)> {
        let mut ids: Vec<u32> = self.words.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|id| (id, self.nats)).collect()
    }

    /// The opener wrote `token`: a word it starts is restated, so none of that word's forms is
    /// biased any more ("American" then " american" would repeat it).
    pub fn used(&mut self, token: u32) {
        self.words.retain(|w| !w.contains(&token));
    }

    /// Whether anything is still biased.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_word_loses_all_its_forms_and_only_those() {
        let mut b = PromptBias::from_groups(vec![vec![10, 11, 12], vec![20, 21], vec![]], 4.0);
        assert_eq!(b.logit_bias(), vec![(10, 4.0), (11, 4.0), (12, 4.0), (20, 4.0), (21, 4.0)]);
        b.used(5); // not a question word
        assert_eq!(b.logit_bias().len(), 5);
        b.used(11); // " american" after "American": the word is restated
        assert_eq!(b.logit_bias(), vec![(20, 4.0), (21, 4.0)]);
        b.used(21);
        assert!(b.is_empty() && b.logit_bias().is_empty());
    }

    #[test]
    fn a_token_shared_by_two_words_is_biased_once() {
        let b = PromptBias::from_groups(vec![vec![7, 8], vec![8, 9]], 2.0);
        assert_eq!(b.logit_bias(), vec![(7, 2.0), (8, 2.0), (9, 2.0)]);
    }

    #[test]
    fn zero_nats_is_no_bias() {
        assert!(PromptBias::from_groups(vec![vec![1]], 0.0).is_empty());
    }
}
