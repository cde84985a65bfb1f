//! Chat: the model directory's chat template (Jinja, as Hugging Face ships it) rendered with
//! minijinja, and the defaults of `generation_config.json`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage { role: role.to_string(), content: content.to_string() }
    }
}

/// ChatML, used when a model directory ships no template.
const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
}

impl ChatTemplate {
    /// From `chat_template.jinja`, else `tokenizer_config.json`'s `chat_template`, else ChatML.
    pub fn new(jinja: Option<&str>, tokenizer_config: Option<&serde_json::Value>) -> Result<Self> {
        let source = jinja
            .map(str::to_string)
            .or_else(|| {
                tokenizer_config.and_then(|c| c.get("chat_template")).and_then(|t| t.as_str()).map(str::to_string)
            })
            .unwrap_or_else(|| CHATML.to_string());
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source).map_err(|e| Error::Tokenizer(format!("chat template: {e}")))?;
        Ok(ChatTemplate { env })
    }

    /// The prompt for `messages`, ending with the assistant's turn header.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::input("a chat needs at least one message"));
        }
        let t = self.env.get_template("chat").map_err(|e| Error::Tokenizer(format!("chat template: {e}")))?;
        t.render(minijinja::context! { messages => messages, add_generation_prompt => true, enable_thinking => false })
            .map_err(|e| Error::Tokenizer(format!("rendering the chat template: {e}")))
    }
}

/// Sampling defaults and end-of-turn tokens from `generation_config.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationConfig {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub eos: Vec<u32>,
}

impl GenerationConfig {
    pub fn from_json(v: &serde_json::Value) -> Self {
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).map(|x| x as f32);
        let eos = match v.get("eos_token_id") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
            Some(x) => x.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
            None => Vec::new(),
        };
        GenerationConfig {
            temperature: f("temperature"),
            top_p: f("top_p"),
            top_k: v.get("top_k").and_then(|x| x.as_u64()).map(|x| x as u32),
            eos,
        }
    }
}
