//! A model directory in Hugging Face layout: `config.json`, `model.safetensors`, `tokenizer.json`.

use super::checkpoint::Checkpoint;
use crate::error::{Error, Result};

/// The raw files of a model, from disk (native) or from memory (browser downloads).
pub struct ModelFiles {
    /// Where the files came from, for messages.
    pub source: String,
    pub config: serde_json::Value,
    pub weights: Vec<u8>,
    pub tokenizer: Option<Vec<u8>>,
}

impl ModelFiles {
    pub fn from_bytes(source: &str, config: &[u8], weights: Vec<u8>, tokenizer: Option<Vec<u8>>) -> Result<Self> {
        let config =
            serde_json::from_slice(config).map_err(|e| Error::config(format!("not valid JSON ({source}): {e}")))?;
        Ok(ModelFiles { source: source.to_string(), config, weights, tokenizer })
    }

    /// Reads `config.json`, `model.safetensors` and (if present) `tokenizer.json` from `dir`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| Error::File { path: p.display().to_string(), message: e.to_string() })
        };
        let config = read("config.json")?;
        let weights = read("model.safetensors")?;
        let tokenizer = dir.join("tokenizer.json").exists().then(|| read("tokenizer.json")).transpose()?;
        Self::from_bytes(&dir.display().to_string(), &config, weights, tokenizer)
    }

    pub fn checkpoint(&self) -> Result<Checkpoint<'_>> {
        Checkpoint::parse(&format!("{}/model.safetensors", self.source), &self.weights)
    }
}
