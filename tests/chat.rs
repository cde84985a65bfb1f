//! Chat with a tiny random SDAR model on Qwen3's real tokenizer and chat template: three turns,
//! and turn 3 reuses the cached keys/values of turns 1-2 instead of recomputing them.

mod common;
use blockdiff::chat::{ChatMessage, ChatTemplate};
use blockdiff::model::{synthetic, LoadOptions, ModelFiles};
use blockdiff::{gpu::DType, GenerateOptions, Session, Strategy};
use std::path::PathBuf;

fn qwen_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tokenizers/qwen3");
    if dir.join("tokenizer.json").exists() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "run scripts/fetch-qwen-tokenizer.sh first (CI does)");
    eprintln!("skipping: {} missing (scripts/fetch-qwen-tokenizer.sh)", dir.display());
    None
}

/// A tiny random SDAR model directory on Qwen3's tokenizer; each call gets its own directory
/// (tests run in parallel and delete theirs).
fn tiny_sdar_dir(qwen: &std::path::Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("blockdiff-tiny-sdar-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (config, weights) = synthetic::random_sdar(2, 64, 4, 2, 16, 128, 151680, 4, false);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(qwen.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"temperature": 0.8, "top_p": 0.95, "top_k": 20, "eos_token_id": [151645, 151643]}"#,
    )
    .unwrap();
    dir
}

#[test]
fn qwen3_chat_template_renders() {
    let Some(q) = qwen_dir() else { return };
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(q.join("tokenizer_config.json")).unwrap()).unwrap();
    let t = ChatTemplate::new(None, Some(&cfg)).unwrap();
    let text = t
        .render(&[
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello!"),
            ChatMessage::new("user", "How are you?"),
        ])
        .unwrap();
    assert!(text.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"), "{text}");
    assert!(text.contains("<|im_start|>assistant\nHello!<|im_end|>\n"), "{text}");
    // enable_thinking = false: Qwen3's template opens the answer with an empty think block.
    assert!(
        text.ends_with("<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        "{text}"
    );
}

#[test]
fn three_turn_chat_reuses_the_cache() {
    let Some(gpu) = common::gpu() else { return };
    let Some(q) = qwen_dir() else { return };
    let dir = tiny_sdar_dir(&q);
    let files = ModelFiles::from_dir(&dir).unwrap();
    let mut s = Session::load(&gpu, &files, &LoadOptions { dtype: Some(DType::F32), context: Some(512) }).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let defaults = s.default_options();
    assert_eq!((defaults.temperature, defaults.top_p, defaults.top_k), (0.8, 0.95, 20));
    assert!(s.tokenizer.eos.contains(&151645));
    let opts = GenerateOptions { max_tokens: 8, seed: 3, strategy: Strategy::Confidence, ..defaults };
    let mut messages = vec![ChatMessage::new("system", "You are a test.")];
    let mut stats = Vec::new();
    let mut prompts: Vec<Vec<u32>> = Vec::new();
    for user in ["Hello there", "Tell me more", "And a third thing"] {
        messages.push(ChatMessage::new("user", user));
        let rendered = s.chat_template.render(&messages).unwrap();
        prompts.push(s.tokenizer.encode(&rendered).unwrap());
        let g = pollster::block_on(s.chat(&messages, &opts, &mut |_| true)).unwrap();
        assert!(!g.tokens.is_empty() || g.eos_token.is_some());
        messages.push(ChatMessage::new("assistant", &g.text));
        stats.push(g.stats);
    }
    assert_eq!(stats[0].reused_tokens, 0);
    // Turn 3 reuses every cached token its prompt shares with turn 2's (block-aligned). The
    // template renders history without the empty think block it opens answers with, so the
    // shared prefix ends at turn 2's answer header: all of turns 1-2's questions and turn 1's
    // answer come from the cache.
    let block = 4;
    let shared = prompts[1].iter().zip(&prompts[2]).take_while(|(a, b)| a == b).count();
    assert!(shared > prompts[0].len(), "turn 3 should share all of turn 1 with turn 2");
    assert_eq!(stats[2].reused_tokens, shared / block * block, "{stats:?}");
    assert_eq!(stats[2].reused_tokens + stats[2].prefill_tokens, stats[2].prompt_tokens);
    assert!(stats[2].prefill_tokens < stats[2].prompt_tokens - prompts[0].len(), "{stats:?}");
    // A reset conversation starts from scratch.
    s.reset();
    let g = pollster::block_on(s.chat(&messages[..2], &opts, &mut |_| true)).unwrap();
    assert_eq!(g.stats.reused_tokens, 0);
}

#[test]
fn cli_chat_holds_three_turns() {
    let Some(_gpu) = common::gpu() else { return };
    let Some(q) = qwen_dir() else { return };
    let dir = tiny_sdar_dir(&q);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_blockdiff"))
        .args(["chat", "--model", dir.to_str().unwrap(), "--max-tokens", "6", "--precision", "f32"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"Hello\nTell me more\n/reset\nAgain\nAnd more\nThird\n/exit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("(conversation reset)"), "{err}");
    let turn3 = err.lines().find_map(|l| l.split_once("[turn 3:")).unwrap_or_else(|| panic!("no turn 3 in {err}")).1;
    let reused: usize = turn3.split(" reused").next().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(reused >= 20, "turn 3 reused only {reused} tokens: {turn3}");
}
