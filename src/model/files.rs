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
    /// `chat_template.jinja`, if the directory has one.
    pub chat_template: Option<String>,
    /// `tokenizer_config.json` (may hold `chat_template`).
    pub tokenizer_config: Option<serde_json::Value>,
    /// `generation_config.json` (sampling defaults, EOS ids).
    pub generation_config: Option<serde_json::Value>,
}

impl ModelFiles {
    pub fn from_bytes(source: &str, config: &[u8], weights: Vec<u8>, tokenizer: Option<Vec<u8>>) -> Result<Self> {
        let config =
            serde_json::from_slice(config).map_err(|e| Error::config(format!("not valid JSON ({source}): {e}")))?;
        Ok(ModelFiles {
            source: source.to_string(),
            config,
            weights,
            tokenizer,
            chat_template: None,
            tokenizer_config: None,
            generation_config: None,
        })
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
        let optional = |name: &str| dir.join(name).exists().then(|| read(name)).transpose();
        let tokenizer = optional("tokenizer.json")?;
        let mut files = Self::from_bytes(&dir.display().to_string(), &config, weights, tokenizer)?;
        files.chat_template = optional("chat_template.jinja")?.map(|b| String::from_utf8_lossy(&b).into_owned());
        let json = |name: &str| -> Result<Option<serde_json::Value>> {
            optional(name)?
                .map(|b| {
                    serde_json::from_slice(&b).map_err(|e| Error::config(format!("{name} is not valid JSON: {e}")))
                })
                .transpose()
        };
        files.tokenizer_config = json("tokenizer_config.json")?;
        files.generation_config = json("generation_config.json")?;
        Ok(files)
    }

    pub fn checkpoint(&self) -> Result<Checkpoint<'_>> {
        Checkpoint::parse(&format!("{}/model.safetensors", self.source), &self.weights)
    }
}
