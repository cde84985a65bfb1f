//! Tokenizers in Hugging Face `tokenizer.json` format (works on wasm too).

use crate::error::{Error, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// `<|endoftext|>` (GPT-2 style BOS/EOS) or the config's BOS.
    pub bos: Option<u32>,
    /// Tokens that end generation.
    pub eos: Vec<u32>,
}

impl Tokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let inner = parse(bytes)?;
        let eot = inner.token_to_id("<|endoftext|>");
        let im_end = inner.token_to_id("<|im_end|>");
        Ok(Tokenizer { bos: eot, eos: eot.into_iter().chain(im_end).collect(), inner })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(format!("cannot encode the text: {e}")))?
            .get_ids()
            .to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| Error::Tokenizer(format!("cannot decode {} tokens: {e}", ids.len())))
    }

    /// One token's text (for probes and visualisation).
    pub fn token_text(&self, id: u32) -> String {
        self.inner.decode(&[id], false).unwrap_or_else(|_| format!("<{id}>"))
    }
}

/// Parses `tokenizer.json`. The `tokenizers` crate panics (instead of failing) on some malformed
/// files, e.g. broken JSON or an odd `decoder` section (found by `tests/reliability.rs`), so the
/// document is checked first, and natively a panic is still caught and reported as an error.
fn parse(bytes: &[u8]) -> Result<tokenizers::Tokenizer> {
    let malformed = |e: &dyn std::fmt::Display| Error::Tokenizer(format!("tokenizer.json is malformed: {e}"));
    let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed(&e))?;
    match doc.get("decoder") {
        None | Some(serde_json::Value::Null) => {}
        Some(d) if d.get("type").is_some_and(|t| t.is_string()) => {}
        Some(_) => return Err(malformed(&"'decoder' must be null or an object with a string 'type'")),
    }
    let load = || tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| malformed(&e));
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::panic::catch_unwind(load).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the tokenizers library panicked".into());
            Err(malformed(&msg))
        })
    }
    #[cfg(target_arch = "wasm32")]
    load()
}
