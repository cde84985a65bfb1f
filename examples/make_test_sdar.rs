//! Writes the tiny random SDAR chat model that the browser tests load (web/test.sh runs it):
//! Qwen3's real tokenizer and chat template over random weights (2 layers, hidden 64, tied
//! 151680-token embedding, block 4), plus a `generation_config.json` with Qwen3's end-of-turn
//! tokens.
//!
//! ```sh
//! scripts/fetch-qwen-tokenizer.sh
//! cargo run --example make_test_sdar -- target/test-models/sdar-chat [target/tokenizers/qwen3]
//! ```
//! The output is the same on every run (fixed seeds); files already up to date are left alone.

use blockdiff::model::synthetic;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: make_test_sdar OUT_DIR [QWEN_TOKENIZER_DIR (default target/tokenizers/qwen3)]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() > 2 || args.iter().any(|a| a.starts_with('-')) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let out = PathBuf::from(&args[0]);
    let qwen = PathBuf::from(args.get(1).map_or("target/tokenizers/qwen3", String::as_str));
    match write_model(&out, &qwen) {
        Ok(bytes) => {
            eprintln!("tiny SDAR chat model in {} ({:.1} MB)", out.display(), bytes as f64 / 1e6);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make_test_sdar: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_model(out: &Path, qwen: &Path) -> Result<u64, String> {
    let read = |name: &str| {
        let p = qwen.join(name);
        std::fs::read(&p).map_err(|e| format!("{}: {e} (run scripts/fetch-qwen-tokenizer.sh)", p.display()))
    };
    let tokenizer = read("tokenizer.json")?;
    let tokenizer_config = read("tokenizer_config.json")?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&tokenizer_config).map_err(|e| format!("tokenizer_config.json: {e}"))?;
    let template = parsed
        .get("chat_template")
        .and_then(|t| t.as_str())
        .ok_or("tokenizer_config.json has no chat_template string")?
        .to_string();

    // Layers and widths are tiny (software WebGPU is slow); the vocabulary is Qwen3's own.
    let (config, weights) = synthetic::random_sdar(2, 64, 4, 2, 16, 128, 151680, 4, true);
    let config = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
    let generation_config =
        br#"{"temperature": 0.8, "top_p": 0.95, "top_k": 20, "eos_token_id": [151645, 151643]}"#.to_vec();

    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let files: [(&str, &[u8]); 6] = [
        ("config.json", &config),
        ("model.safetensors", &weights),
        ("tokenizer.json", &tokenizer),
        ("tokenizer_config.json", &tokenizer_config),
        ("chat_template.jinja", template.as_bytes()),
        ("generation_config.json", &generation_config),
    ];
    let mut total = 0;
    for (name, bytes) in files {
        let path = out.join(name);
        total += bytes.len() as u64;
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(total)
}
