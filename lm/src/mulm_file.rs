//! `mulm.json`: the single source of truth shipped beside every checkpoint (model shape, special
//! tokens, chat template, opener settings). Read by this runtime and by the Python trainer;
//! the schema is documented in `lm/SCHEMA.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{ModelConfig, Preset};
use crate::error::{LmError, Result};

/// File name of the config beside a checkpoint.
pub const MULM_JSON: &str = "mulm.json";
/// Current schema version written by [`MulmFile::save`].
pub const FORMAT_VERSION: u32 = 1;

/// One special token: its literal text in tokenizer.json and its id (tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialToken {
    /// Literal text, e.g. `<|user|>`.
    pub content: String,
    /// Token id; must equal tokenizer.json's id for `content`.
    pub id: u32,
}

/// How one role's turn is wrapped: `prefix` tokens, the role's text (encoded without special
/// tokens), `suffix` tokens. Entries are names of `special_tokens`, not literal text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnFormat {
    /// Special-token names emitted before the content.
    pub prefix: Vec<String>,
    /// Special-token names emitted after the content.
    pub suffix: Vec<String>,
}

/// Declarative chat serialization (paper §architecture: "chat serialization with explicit
/// turn-boundary tokens"). A history serializes to
/// `begin ++ for turn: roles[turn.role].prefix ++ encode(content) ++ roles[turn.role].suffix
/// ++ generation_prefix`, and the assistant's reply ends at any `stop` token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTemplate {
    /// Special-token names at the very start of a sequence (normally `["bos"]`).
    pub begin: Vec<String>,
    /// Per-role wrapping; keys are `user`, `assistant` and optionally `system`.
    pub roles: BTreeMap<String, TurnFormat>,
    /// Special-token names appended after the history to make the model answer.
    pub generation_prefix: Vec<String>,
    /// Special-token names that end the assistant's turn.
    pub stop: Vec<String>,
    /// Trim leading/trailing whitespace of each turn's content before encoding.
    #[serde(default = "default_true")]
    pub trim_content: bool,
}

fn default_true() -> bool {
    true
}

/// Opener behaviour (paper §collaborative generation, §results "query lengths").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenerSettings {
    /// Words in an opener when the caller gives no budget (1..=16; paper's operating range is 4–8).
    pub default_words: usize,
    /// Above this many tokens in the last user turn the generic opener is used instead
    /// (paper: query lengths 3–47 tokens; fall back for much longer inputs).
    pub max_query_tokens: usize,
    /// Text spoken instead of a generated opener for over-long inputs.
    pub fallback_opener: String,
    /// Hard cap on generated tokens per opener (safety net when no word boundary comes).
    pub max_new_tokens: usize,
    /// The opener gate's threshold chosen for this checkpoint on validation prompts (mean
    /// token log-probability in nats, adjusted; see the daemon's `gate` module). Absent: the
    /// daemon's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_min_score: Option<f32>,
    /// While writing an opener, never choose a token that would repeat a token n-gram of this
    /// length already in the opener ([`crate::sampler::repeated_ngram_continuations`]). 0 =
    /// off, which a file without the key gets; new files get 2 (`mulm_defaults.json`), which
    /// also rules out the repeated word pairs the gate penalises, unless their tokens differ
    /// by case or leading space. The prompt is not counted: echoing the question is welcome.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_repeat_ngram: usize,
    /// This checkpoint's gate needs the harmful-request check ([`crate::harm`]) to stop enough
    /// harmful requests (issue 12: Do-Not-Answer gated or refused ≥ 80 %): a μLM whose openers
    /// are more often on topic is more often confident about harmful requests too. The runtime
    /// turns the check on for it unless the config says `[gate] harm_check = false`
    /// ([`crate::gate::GateConfig::harm_check_on`]). Absent: false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub harm_check: bool,
    /// Nats added, while writing an opener, to the logits of the tokens that start the last
    /// user turn's content words ([`crate::gate::content_words`]), until the opener has used
    /// that token: a pull toward restating the question ("Why is the sky blue?" → "The sky
    /// …"). For the sampler only: the gate still scores the model's own log-probabilities.
    /// Chosen on validation prompts with the gate threshold. Absent: 0 (off).
    #[serde(default, skip_serializing_if = "is_zero_f32")]
    pub prompt_bias: f32,
    /// The prompt bias is withheld from a question whose harmful-request margin
    /// ([`crate::harm::HarmClassifier::margin`], logit − threshold) is above this: restating a
    /// harmful request's words makes its opener fluent and on topic, so the gate lets more of
    /// them through (issue 12, Do-Not-Answer). Chosen as the margin at which a share of the
    /// harm check's harmless calibration turns fire (`training/safety/harm_probe.py
    /// --margins-at`). Applies only when the check ran; absent: the bias applies to every
    /// question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_bias_max_harm: Option<f32>,
    /// The gate fires for a question whose harmful-request margin is above this, whatever its
    /// opener scores ([`crate::gate::GateScore::harmful`]). A μLM whose openers are more
    /// often confident and on topic lets more harmful requests past the score threshold, so
    /// its check can be asked to fire earlier than at the head's own threshold (issue 12:
    /// Do-Not-Answer gated or refused). Chosen with the gate threshold; absent: 0, the
    /// head's threshold (a share of harmless calibration turns, `harm_probe.py --margins-at`
    /// gives the share at any margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harm_gate_margin: Option<f32>,
}

impl OpenerSettings {
    /// The prompt bias (nats) for a question whose harmful-request margin is `harm_margin`
    /// (None: the check did not run): [`OpenerSettings::prompt_bias`], or 0 when the margin
    /// is above [`OpenerSettings::prompt_bias_max_harm`].
    pub fn prompt_bias_for(&self, harm_margin: Option<f32>) -> f32 {
        match (self.prompt_bias_max_harm, harm_margin) {
            (Some(max), Some(m)) if m > max || m.is_nan() => 0.0,
            _ => self.prompt_bias,
        }
    }

    /// The harmful-request margin above which the gate fires
    /// ([`OpenerSettings::harm_gate_margin`], else 0: the head's own threshold).
    pub fn harm_gate_margin(&self) -> f32 {
        self.harm_gate_margin.unwrap_or(0.0)
    }
}

fn is_zero_f32(x: &f32) -> bool {
    *x == 0.0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for OpenerSettings {
    fn default() -> Self {
        defaults().opener.clone()
    }
}

/// The whole `mulm.json` document. Model fields are flattened to the top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulmFile {
    /// Always `"mulm"`; lets tools recognise the file.
    pub format: String,
    /// Schema version (currently 1).
    pub format_version: u32,
    /// Preset name such as `"512-8"`, or `"custom"`.
    pub preset: String,
    /// Architecture hyper-parameters.
    #[serde(flatten)]
    pub model: ModelConfig,
    /// Positional encoding layout of the safetensors weights; always `"neox_half"` (see SCHEMA.md).
    pub rope_style: String,
    /// Input embedding tied to the LM head; always true for a μLM.
    pub tie_embeddings: bool,
    /// Special tokens by name (`bos`, `end`, `user`, `assistant`, optional `system`, `pad`).
    pub special_tokens: BTreeMap<String, SpecialToken>,
    /// Chat serialization.
    pub chat_template: ChatTemplate,
    /// Opener defaults.
    #[serde(default)]
    pub opener: OpenerSettings,
}

/// The shared defaults file (special tokens in id order, opener settings), also read by
/// training/model.py so both sides write the same mulm.json.
const DEFAULTS_JSON: &str = include_str!("../mulm_defaults.json");

#[derive(Deserialize)]
struct Defaults {
    special_tokens: Vec<(String, String)>,
    opener: OpenerSettings,
}

fn defaults() -> &'static Defaults {
    static D: std::sync::OnceLock<Defaults> = std::sync::OnceLock::new();
    // The file is compiled in and checked by a unit test, so a parse failure is a build defect.
    D.get_or_init(|| serde_json::from_str(DEFAULTS_JSON).expect("lm/mulm_defaults.json is valid"))
}

/// Default special tokens, (name, content) in id order (ids 0..=5 for a fresh tokenizer), from
/// lm/mulm_defaults.json.
pub fn default_specials() -> &'static [(String, String)] {
    &defaults().special_tokens
}

impl MulmFile {
    /// A mulm.json for `preset` with the default special tokens (ids 0..=5 in
    /// [`default_specials`] order) and the default chat template.
    pub fn for_preset(preset: Preset) -> MulmFile {
        MulmFile::for_config(preset.name(), preset.config())
    }

    /// Like [`MulmFile::for_preset`] for an arbitrary config.
    pub fn for_config(preset_name: &str, model: ModelConfig) -> MulmFile {
        let special_tokens = default_specials()
            .iter()
            .enumerate()
            .map(|(i, (name, content))| (name.to_string(), SpecialToken { content: content.to_string(), id: i as u32 }))
            .collect();
        let role = |r: &str| TurnFormat { prefix: vec![r.to_string()], suffix: vec!["end".to_string()] };
        let roles = ["system", "user", "assistant"].iter().map(|r| (r.to_string(), role(r))).collect();
        MulmFile {
            format: "mulm".into(),
            format_version: FORMAT_VERSION,
            preset: preset_name.to_string(),
            model,
            rope_style: "neox_half".into(),
            tie_embeddings: true,
            special_tokens,
            chat_template: ChatTemplate {
                begin: vec!["bos".into()],
                roles,
                generation_prefix: vec!["assistant".into()],
                stop: vec!["end".into()],
                trim_content: true,
            },
            opener: OpenerSettings::default(),
        }
    }

    /// Read and validate `path` (a mulm.json file).
    pub fn load(path: &Path) -> Result<MulmFile> {
        let text = std::fs::read_to_string(path).map_err(|e| LmError::io(path, e))?;
        let file: MulmFile = serde_json::from_str(&text).map_err(|e| LmError::Json { path: path.to_path_buf(), source: e })?;
        file.validate()?;
        Ok(file)
    }

    /// Parse and validate a mulm.json document held in memory (e.g. embedded in a GGUF).
    pub fn from_json_str(text: &str, origin: &Path) -> Result<MulmFile> {
        let file: MulmFile = serde_json::from_str(text).map_err(|e| LmError::Json { path: origin.to_path_buf(), source: e })?;
        file.validate()?;
        Ok(file)
    }

    /// Pretty JSON text of this file.
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| LmError::Json { path: MULM_JSON.into(), source: e })
    }

    /// Write `path` (pretty JSON).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = self.to_json_string()?;
        std::fs::write(path, text + "\n").map_err(|e| LmError::io(path, e))
    }

    /// Check internal consistency: known format, valid model, rope style, template names.
    pub fn validate(&self) -> Result<()> {
        if self.format != "mulm" {
            return Err(LmError::InvalidConfig(format!("format is {:?}, expected \"mulm\"", self.format)));
        }
        if self.format_version != FORMAT_VERSION {
            return Err(LmError::InvalidConfig(format!(
                "format_version {} not supported (expected {FORMAT_VERSION})",
                self.format_version
            )));
        }
        self.model.validate()?;
        if self.rope_style != "neox_half" {
            return Err(LmError::InvalidConfig(format!("rope_style {:?} not supported (expected \"neox_half\")", self.rope_style)));
        }
        if !self.tie_embeddings {
            return Err(LmError::InvalidConfig("tie_embeddings must be true for a μLM".into()));
        }
        if let Ok(p) = Preset::from_name(&self.preset) {
            if p.config() != self.model {
                return Err(LmError::InvalidConfig(format!("preset {:?} does not match the listed hyper-parameters", self.preset)));
            }
        }
        for name in ["bos", "end"] {
            if !self.special_tokens.contains_key(name) {
                return Err(LmError::InvalidConfig(format!("special_tokens lacks {name:?}")));
            }
        }
        for tok in self.special_tokens.values() {
            if tok.id as usize >= self.model.vocab {
                return Err(LmError::InvalidConfig(format!("special token {:?} id {} >= vocab {}", tok.content, tok.id, self.model.vocab)));
            }
        }
        let t = &self.chat_template;
        for role in ["user", "assistant"] {
            if !t.roles.contains_key(role) {
                return Err(LmError::InvalidConfig(format!("chat_template.roles lacks {role:?}")));
            }
        }
        let names = t
            .begin
            .iter()
            .chain(&t.generation_prefix)
            .chain(&t.stop)
            .chain(t.roles.values().flat_map(|r| r.prefix.iter().chain(&r.suffix)));
        for n in names {
            self.special_id(n)?;
        }
        if t.stop.is_empty() {
            return Err(LmError::InvalidConfig("chat_template.stop is empty".into()));
        }
        let o = &self.opener;
        if !(1..=16).contains(&o.default_words) {
            return Err(LmError::InvalidConfig(format!("opener.default_words {} not in 1..=16", o.default_words)));
        }
        if o.no_repeat_ngram == 1 {
            return Err(LmError::InvalidConfig("opener.no_repeat_ngram 1 is not an n-gram length: 0 (off) or ≥ 2".into()));
        }
        if !(o.prompt_bias.is_finite() && (0.0..=20.0).contains(&o.prompt_bias)) {
            return Err(LmError::InvalidConfig(format!("opener.prompt_bias {} not in 0..=20 nats", o.prompt_bias)));
        }
        if let Some(m) = o.prompt_bias_max_harm.filter(|m| !(m.is_finite() && (-20.0..=20.0).contains(m))) {
            return Err(LmError::InvalidConfig(format!("opener.prompt_bias_max_harm {m} not a margin in -20..=20")));
        }
        if let Some(m) = o.harm_gate_margin.filter(|m| !(m.is_finite() && (-20.0..=20.0).contains(m))) {
            return Err(LmError::InvalidConfig(format!("opener.harm_gate_margin {m} not a margin in -20..=20")));
        }
        Ok(())
    }

    /// Id of the special token called `name` (e.g. "bos").
    pub fn special_id(&self, name: &str) -> Result<u32> {
        self.special_tokens.get(name).map(|t| t.id).ok_or_else(|| LmError::UnknownSpecialName(name.to_string()))
    }

    /// Ids of the tokens that end an assistant turn.
    pub fn stop_ids(&self) -> Result<Vec<u32>> {
        self.chat_template.stop.iter().map(|n| self.special_id(n)).collect()
    }

    /// A Jinja chat template equivalent to [`ChatTemplate`], for llama.cpp's
    /// `tokenizer.chat_template` GGUF key (roles map to their prefix/suffix literals).
    pub fn jinja_chat_template(&self) -> Result<String> {
        let lit = |names: &[String]| -> Result<String> {
            let mut s = String::new();
            for n in names {
                let tok = self.special_tokens.get(n).ok_or_else(|| LmError::UnknownSpecialName(n.clone()))?;
                s.push_str(&tok.content);
            }
            Ok(s)
        };
        let t = &self.chat_template;
        let mut j = format!("{{{{ '{}' }}}}{{% for message in messages %}}", lit(&t.begin)?);
        let content = if t.trim_content { "message['content'] | trim" } else { "message['content']" };
        for (i, (role, f)) in t.roles.iter().enumerate() {
            let kw = if i == 0 { "if" } else { "elif" };
            j.push_str(&format!(
                "{{% {kw} message['role'] == '{role}' %}}{{{{ '{}' + {content} + '{}' }}}}",
                lit(&f.prefix)?,
                lit(&f.suffix)?
            ));
        }
        j.push_str("{% endif %}{% endfor %}");
        j.push_str(&format!("{{% if add_generation_prompt %}}{{{{ '{}' }}}}{{% endif %}}", lit(&t.generation_prefix)?));
        Ok(j)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn shared_defaults_parse_in_id_order() {
        let names: Vec<&str> = default_specials().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["pad", "bos", "end", "user", "assistant", "system"]);
        assert_eq!(OpenerSettings::default().default_words, 6);
    }
    use super::*;

    #[test]
    fn default_file_round_trips_and_validates() {
        let f = MulmFile::for_preset(Preset::M512x8);
        f.validate().unwrap();
        let text = f.to_json_string().unwrap();
        let back = MulmFile::from_json_str(&text, Path::new("mem")).unwrap();
        assert_eq!(back, f);
        // flattened model fields live at the top level for the Python side
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["hidden"], 512);
        assert_eq!(v["intermediate"], 1408);
        assert_eq!(v["special_tokens"]["user"]["content"], "<|user|>");
    }

    #[test]
    fn preset_mismatch_is_rejected() {
        let mut f = MulmFile::for_preset(Preset::M512x8);
        f.model.intermediate = 1024;
        assert!(f.validate().is_err());
    }

    #[test]
    fn a_prompt_bias_that_is_not_a_small_number_of_nats_is_named() {
        for bad in [f32::NAN, -1.0, 21.0, f32::INFINITY] {
            let mut f = MulmFile::for_preset(Preset::Tiny64x2);
            f.opener.prompt_bias = bad;
            let e = f.validate().unwrap_err().to_string();
            assert!(e.contains("opener.prompt_bias"), "{bad}: {e}");
        }
        // Absent from a file: off, and written back without the key.
        let f = MulmFile::for_preset(Preset::Tiny64x2);
        assert_eq!(f.opener.prompt_bias, 0.0);
        assert!(!f.to_json_string().unwrap().contains("prompt_bias"));
    }

    #[test]
    fn a_harm_limit_that_is_not_a_finite_margin_is_named() {
        for bad in [f32::NAN, f32::NEG_INFINITY, 25.0] {
            let mut f = MulmFile::for_preset(Preset::Tiny64x2);
            f.opener.prompt_bias_max_harm = Some(bad);
            let e = f.validate().unwrap_err().to_string();
            assert!(e.contains("opener.prompt_bias_max_harm"), "{bad}: {e}");
        }
        let f = MulmFile::for_preset(Preset::Tiny64x2);
        assert_eq!(f.opener.prompt_bias_max_harm, None);
        assert!(!f.to_json_string().unwrap().contains("prompt_bias_max_harm"));
    }

    #[test]
    fn a_harm_gate_margin_that_is_not_a_finite_margin_is_named_and_absent_means_the_heads_threshold() {
        for bad in [f32::NAN, f32::INFINITY, -25.0] {
            let mut f = MulmFile::for_preset(Preset::Tiny64x2);
            f.opener.harm_gate_margin = Some(bad);
            let e = f.validate().unwrap_err().to_string();
            assert!(e.contains("opener.harm_gate_margin"), "{bad}: {e}");
        }
        let mut f = MulmFile::for_preset(Preset::Tiny64x2);
        assert_eq!((f.opener.harm_gate_margin, f.opener.harm_gate_margin()), (None, 0.0));
        assert!(!f.to_json_string().unwrap().contains("harm_gate_margin"));
        f.opener.harm_gate_margin = Some(-0.6);
        let back = MulmFile::from_json_str(&f.to_json_string().unwrap(), Path::new("mulm.json")).unwrap();
        assert_eq!(back.opener.harm_gate_margin(), -0.6);
    }

    #[test]
    fn the_bias_is_withheld_only_above_the_harm_limit_and_only_when_the_check_ran() {
        let mut o = MulmFile::for_preset(Preset::Tiny64x2).opener;
        o.prompt_bias = 4.0;
        // No limit: every question gets the bias, flagged or not.
        assert_eq!(o.prompt_bias_for(Some(3.0)), 4.0);
        o.prompt_bias_max_harm = Some(-0.5);
        assert_eq!(o.prompt_bias_for(None), 4.0);
        assert_eq!(o.prompt_bias_for(Some(-2.0)), 4.0);
        assert_eq!(o.prompt_bias_for(Some(-0.5)), 4.0);
        assert_eq!(o.prompt_bias_for(Some(-0.49)), 0.0);
        assert_eq!(o.prompt_bias_for(Some(1.0)), 0.0);
        // A NaN margin is not "below the limit": withheld.
        assert_eq!(o.prompt_bias_for(Some(f32::NAN)), 0.0);
        // An empty transcript's margin (−∞) keeps it.
        assert_eq!(o.prompt_bias_for(Some(f32::NEG_INFINITY)), 4.0);
    }

    #[test]
    fn unknown_template_name_is_rejected() {
        let mut f = MulmFile::for_preset(Preset::Tiny64x2);
        f.chat_template.stop = vec!["eos".into()];
        assert!(matches!(f.validate(), Err(LmError::UnknownSpecialName(n)) if n == "eos"));
    }
}
