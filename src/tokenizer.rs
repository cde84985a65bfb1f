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
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json is malformed: {e}")))?;
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
