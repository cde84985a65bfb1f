//! A model directory in Hugging Face layout: `config.json`, `model.safetensors` (or
//! `model.safetensors.index.json` and its shards), `tokenizer.json`, and for chat models
//! `chat_template.jinja`, `tokenizer_config.json`, `generation_config.json`.

use super::checkpoint::{ByteSource, Checkpoint, ShardSource};
use crate::error::{Error, Result};

/// Where the weights come from.
pub enum Weights {
    /// One safetensors file in memory.
    Bytes(Vec<u8>),
    /// Safetensors files read by range as tensors are needed (a file on disk, the shards of a
    /// sharded checkpoint, a JS buffer): host memory holds one tensor at a time.
    Sources(Vec<(String, Box<dyn ByteSource>)>),
}

/// The raw files of a model, from disk (native) or from memory (browser downloads).
pub struct ModelFiles {
    /// Where the files came from, for messages.
    pub source: String,
    pub config: serde_json::Value,
    pub weights: Weights,
    /// For sharded checkpoints: the index's `weight_map` (tensor → shard file), checked on load.
    pub weight_map: Option<Vec<(String, String)>>,
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
        Self::from_weights(source, config, Weights::Bytes(weights), tokenizer)
    }

    pub fn from_weights(source: &str, config: &[u8], weights: Weights, tokenizer: Option<Vec<u8>>) -> Result<Self> {
        let config =
            serde_json::from_slice(config).map_err(|e| Error::config(format!("not valid JSON ({source}): {e}")))?;
        Ok(ModelFiles {
            source: source.to_string(),
            config,
            weights,
            weight_map: None,
            tokenizer,
            chat_template: None,
            tokenizer_config: None,
            generation_config: None,
        })
    }

    /// Reads the small files of `dir` and opens the weights for reading by range (nothing of
    /// the safetensors data is read yet).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        use super::checkpoint::FileSource;
        let dir = dir.as_ref();
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| Error::File { path: p.display().to_string(), message: e.to_string() })
        };
        let config = read("config.json")?;
        let optional = |name: &str| dir.join(name).exists().then(|| read(name)).transpose();
        let json = |name: &str| -> Result<Option<serde_json::Value>> {
            optional(name)?
                .map(|b| {
                    serde_json::from_slice(&b).map_err(|e| Error::config(format!("{name} is not valid JSON: {e}")))
                })
                .transpose()
        };
        let (weights, weight_map) = if dir.join("model.safetensors").exists() {
            let f = FileSource::open(&dir.join("model.safetensors"))?;
            (Weights::Sources(vec![("model.safetensors".into(), Box::new(f))]), None)
        } else if let Some(index) = json("model.safetensors.index.json")? {
            let map = shard_map(&index)?;
            let mut shards: Vec<&str> = map.iter().map(|(_, s)| s.as_str()).collect();
            shards.sort();
            shards.dedup();
            let sources = shards
                .into_iter()
                .map(|s| Ok((s.to_string(), Box::new(FileSource::open(&dir.join(s))?) as Box<dyn ByteSource>)))
                .collect::<Result<Vec<_>>>()?;
            (Weights::Sources(sources), Some(map))
        } else {
            return Err(Error::File {
                path: dir.display().to_string(),
                message: "no model.safetensors or model.safetensors.index.json in this directory".into(),
            });
        };
        let tokenizer = optional("tokenizer.json")?;
        let mut files = Self::from_weights(&dir.display().to_string(), &config, weights, tokenizer)?;
        files.weight_map = weight_map;
        files.chat_template = optional("chat_template.jinja")?.map(|b| String::from_utf8_lossy(&b).into_owned());
        files.tokenizer_config = json("tokenizer_config.json")?;
        files.generation_config = json("generation_config.json")?;
        Ok(files)
    }

    /// The checkpoint's headers (tensor data is read on demand).
    pub fn checkpoint(&self) -> Result<Checkpoint<'_>> {
        let ck = match &self.weights {
            Weights::Bytes(b) => Checkpoint::parse(&format!("{}/model.safetensors", self.source), b)?,
            Weights::Sources(sources) => {
                let shards: Vec<ShardSource<'_>> = sources
                    .iter()
                    .map(|(name, s)| (format!("{}/{name}", self.source), Box::new(s.as_ref()) as Box<dyn ByteSource>))
                    .collect();
                Checkpoint::from_sources(&self.source, shards)?
            }
        };
        for (tensor, shard) in self.weight_map.iter().flatten() {
            if !ck.has_weight(tensor) {
                return Err(Error::checkpoint(
                    &self.source,
                    format!("model.safetensors.index.json puts '{tensor}' in {shard}, which does not hold it"),
                ));
            }
        }
        Ok(ck)
    }
}

/// `weight_map` of a sharded checkpoint's index: tensor name → shard file (a plain file name).
pub fn shard_map(index: &serde_json::Value) -> Result<Vec<(String, String)>> {
    let bad = |m: &str| Error::config(format!("model.safetensors.index.json: {m}"));
    let map = index.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| bad("no 'weight_map' object"))?;
    map.iter()
        .map(|(tensor, shard)| {
            let shard = shard.as_str().ok_or_else(|| bad(&format!("shard of '{tensor}' is not a string")))?;
            if shard.is_empty() || shard.contains(['/', '\\']) || shard.starts_with('.') {
                return Err(bad(&format!("shard '{shard}' must be a file name in the model directory")));
            }
            Ok((tensor.clone(), shard.to_string()))
        })
        .collect()
}
