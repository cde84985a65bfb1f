//! Conversions between JS values and the runtime's types: errors (every [`Error`] becomes a JS
//! `Error` with the Rust message and a `code`), option objects (camelCase keys, checked one by
//! one so a message names the offending option), and results (serde values with camelCase keys).

use crate::chat::ChatMessage;
use crate::error::Error;
use crate::gpu::DType;
use crate::sample::{GenerateOptions, Strategy};
use crate::session::ScoreOptions;
use js_sys::{Array, Reflect};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

/// A JS `Error` with `message` and a machine-readable `code` property.
pub fn js_error(code: &str, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    let _ = Reflect::set(&e, &JsValue::from_str("code"), &JsValue::from_str(code));
    e.into()
}

/// The `code` of a runtime error as JS sees it.
#[allow(unreachable_patterns)]
pub fn error_code(e: &Error) -> &'static str {
    match e {
        Error::NoAdapter(_) => "no-adapter",
        Error::Limit { .. } => "limit",
        Error::Device(_) => "device",
        Error::DeviceLost(_) => "device-lost",
        Error::Gpu(_) => "gpu",
        Error::File { .. } => "file",
        Error::Config(_) => "config",
        Error::Checkpoint { .. } | Error::Shape { .. } => "checkpoint",
        Error::Tokenizer(_) => "tokenizer",
        Error::Input(_) => "input",
        Error::Options(_) => "options",
        Error::Cancelled => "cancelled",
        _ => "error",
    }
}

/// A runtime error as a JS `Error`.
pub fn from_error(e: &Error) -> JsValue {
    js_error(error_code(e), &e.to_string())
}

/// An invalid-option error.
pub fn options_error(message: &str) -> JsValue {
    js_error("options", &format!("invalid option: {message}"))
}

/// Reads a JS options value (undefined, null or a plain object) as a JSON object. Functions and
/// `undefined` members are dropped by `JSON.stringify`; `null` members count as absent.
pub fn options_object(value: &JsValue, what: &str) -> Result<Map<String, Value>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Map::new());
    }
    if !value.is_object() || js_sys::Array::is_array(value) {
        return Err(options_error(&format!("{what} must be an object")));
    }
    let text = js_sys::JSON::stringify(value)
        .map_err(|e| {
            let detail = e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_default();
            options_error(&format!("{what} cannot be read as JSON ({detail}); use plain numbers, strings and arrays"))
        })?
        .as_string()
        .unwrap_or_else(|| "{}".into());
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut map)) => {
            map.retain(|_, v| !v.is_null());
            Ok(map)
        }
        Ok(_) => Err(options_error(&format!("{what} must be an object"))),
        Err(e) => Err(options_error(&format!("{what}: {e}"))),
    }
}

/// Takes `key` out of `map` and converts it, naming the key in the error.
fn take<T: DeserializeOwned>(map: &mut Map<String, Value>, key: &str, expected: &str) -> Result<Option<T>, JsValue> {
    match map.remove(key) {
        None => Ok(None),
        Some(v) => serde_json::from_value::<T>(v.clone())
            .map(Some)
            .map_err(|_| options_error(&format!("{key} must be {expected}, got {}", short(&v)))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..s.char_indices().nth(40).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

/// Rejects keys nobody took (typos such as `max_tokens` would otherwise be ignored silently).
fn no_leftovers(map: &Map<String, Value>, known: &[&str]) -> Result<(), JsValue> {
    if let Some(key) = map.keys().next() {
        return Err(options_error(&format!("unknown option '{key}' (known: {})", known.join(", "))));
    }
    Ok(())
}

const GENERATE_KEYS: &[&str] = &[
    "strategy",
    "steps",
    "threshold",
    "perStep",
    "entropyBound",
    "temperature",
    "topP",
    "topK",
    "maxTokens",
    "seed",
    "stop",
    "stopAtEos",
    "entropyGuard",
    "streamSteps",
    "kvCache",
];

/// `GenerateOptions` from a JS object with camelCase keys, validated for `block` positions.
pub fn generate_options(value: &JsValue, block: usize) -> Result<GenerateOptions, JsValue> {
    options_over(value, block, GenerateOptions::default(), "generate options")
}

/// `GenerateOptions` for a chat turn: the model's `generation_config.json` defaults (`base`)
/// overridden by the JS object's keys.
pub fn chat_options(value: &JsValue, block: usize, base: GenerateOptions) -> Result<GenerateOptions, JsValue> {
    options_over(value, block, base, "chat options")
}

fn options_over(value: &JsValue, block: usize, base: GenerateOptions, what: &str) -> Result<GenerateOptions, JsValue> {
    let mut map = options_object(value, what)?;
    let mut o = base;
    if let Some(s) = take::<String>(&mut map, "strategy", "a string")? {
        o.strategy = s.parse::<Strategy>().map_err(|e| from_error(&e))?;
    }
    o.steps = take(&mut map, "steps", "an integer in [1, 4096]")?.or(o.steps);
    o.threshold = take(&mut map, "threshold", "a number in (0, 1]")?.or(o.threshold);
    o.per_step = take(&mut map, "perStep", &format!("an integer in [1, {block}]"))?.or(o.per_step);
    o.entropy_bound = take(&mut map, "entropyBound", "a number > 0")?.unwrap_or(o.entropy_bound);
    o.temperature = take(&mut map, "temperature", "a number >= 0")?.unwrap_or(o.temperature);
    o.top_p = take(&mut map, "topP", "a number in (0, 1]")?.unwrap_or(o.top_p);
    o.top_k = take(&mut map, "topK", "an integer >= 0")?.unwrap_or(o.top_k);
    o.max_tokens = take(&mut map, "maxTokens", "an integer >= 1")?.unwrap_or(o.max_tokens);
    o.seed = take(&mut map, "seed", "an integer >= 0")?.unwrap_or(o.seed);
    o.stop = take(&mut map, "stop", "an array of strings")?.unwrap_or(o.stop);
    o.stop_at_eos = take(&mut map, "stopAtEos", "a boolean")?.unwrap_or(o.stop_at_eos);
    o.entropy_guard = take(&mut map, "entropyGuard", "a boolean")?.unwrap_or(o.entropy_guard);
    o.stream_steps = take(&mut map, "streamSteps", "a boolean")?.unwrap_or(o.stream_steps);
    o.kv_cache = take(&mut map, "kvCache", "a boolean")?.unwrap_or(o.kv_cache);
    no_leftovers(&map, GENERATE_KEYS)?;
    if o.max_tokens > 1 << 20 {
        return Err(options_error(&format!("maxTokens must be at most {}, got {}", 1 << 20, o.max_tokens)));
    }
    if o.seed > (1u64 << 53) {
        return Err(options_error("seed must be at most 2^53 (a JS safe integer)"));
    }
    o.validate(block).map_err(|e| from_error(&e))?;
    Ok(o)
}

/// `ScoreOptions` from `{ samples, seed }`.
pub fn score_options(value: &JsValue) -> Result<ScoreOptions, JsValue> {
    let mut map = options_object(value, "score options")?;
    let mut o = ScoreOptions::default();
    o.samples = take(&mut map, "samples", "an integer in [1, 1024]")?.unwrap_or(o.samples);
    o.seed = take(&mut map, "seed", "an integer >= 0")?.unwrap_or(o.seed);
    no_leftovers(&map, &["samples", "seed"])?;
    if o.samples == 0 || o.samples > 1024 {
        return Err(options_error(&format!("samples must be an integer in [1, 1024], got {}", o.samples)));
    }
    Ok(o)
}

/// What `loadSession`'s options object holds besides the positional files.
#[derive(Default)]
pub struct LoadOptions {
    pub dtype: Option<DType>,
    /// The text of `chat_template.jinja`.
    pub chat_template: Option<String>,
    /// `tokenizer_config.json` (may hold `chat_template`).
    pub tokenizer_config: Option<Value>,
    /// `generation_config.json` (sampling defaults and EOS ids of chat).
    pub generation_config: Option<Value>,
}

const LOAD_KEYS: &[&str] = &["dtype", "chatTemplate", "tokenizerConfig", "generationConfig"];

/// Load options: `{ dtype?: 'f32' | 'f16' | 'q8' | 'q4', chatTemplate?: string, tokenizerConfig?: string |
/// object, generationConfig?: string | object }` (the JSON files as their text or parsed).
pub fn load_options(value: &JsValue) -> Result<LoadOptions, JsValue> {
    let mut map = options_object(value, "load options")?;
    let dtype = match take::<String>(&mut map, "dtype", "'f32', 'f16', 'q8' or 'q4'")? {
        None => None,
        Some(name) => Some(
            DType::parse(&name)
                .ok_or_else(|| options_error(&format!("dtype must be 'f32', 'f16', 'q8' or 'q4', got '{name}'")))?,
        ),
    };
    let chat_template = take::<String>(&mut map, "chatTemplate", "a string (the text of chat_template.jinja)")?;
    let tokenizer_config = json_file(&mut map, "tokenizerConfig", "tokenizer_config.json")?;
    let generation_config = json_file(&mut map, "generationConfig", "generation_config.json")?;
    no_leftovers(&map, LOAD_KEYS)?;
    Ok(LoadOptions { dtype, chat_template, tokenizer_config, generation_config })
}

/// A JSON file given as its text or as an object; it must hold a JSON object.
fn json_file(map: &mut Map<String, Value>, key: &str, file: &str) -> Result<Option<Value>, JsValue> {
    let value = match map.remove(key) {
        None => return Ok(None),
        Some(Value::String(text)) => serde_json::from_str::<Value>(&text)
            .map_err(|e| js_error("config", &format!("{file} is not valid JSON: {e}")))?,
        Some(v @ Value::Object(_)) => return Ok(Some(v)),
        Some(v) => {
            return Err(options_error(&format!("{key} must be the text of {file} or an object, got {}", short(&v))))
        }
    };
    if !value.is_object() {
        return Err(js_error("config", &format!("{file} must hold a JSON object, got {}", short(&value))));
    }
    Ok(Some(value))
}

fn input_error(message: &str) -> JsValue {
    js_error("input", &format!("invalid input: {message}"))
}

/// What a JS value is, for messages ("the number 3", "null", "an array", ...).
fn describe(v: &JsValue) -> String {
    if v.is_undefined() {
        "undefined".into()
    } else if v.is_null() {
        "null".into()
    } else if Array::is_array(v) {
        "an array".into()
    } else if let Some(s) = v.as_string() {
        format!("the string {}", short(&Value::String(s)))
    } else if let Some(n) = v.as_f64() {
        format!("the number {n}")
    } else {
        match v.js_typeof().as_string().as_deref() {
            Some("object") => "an object".into(),
            Some("boolean") => "a boolean".into(),
            Some("function") => "a function".into(),
            Some(other) => format!("a {other}"),
            None => "an unknown value".into(),
        }
    }
}

/// A conversation from a JS array of `{ role, content }` objects (other keys are ignored). The
/// chat template decides which roles it accepts.
pub fn chat_messages(value: &JsValue) -> Result<Vec<ChatMessage>, JsValue> {
    if !Array::is_array(value) {
        return Err(input_error(&format!(
            "messages must be an array of {{ role, content }} objects, got {}",
            describe(value)
        )));
    }
    let array: &Array = value.unchecked_ref();
    if array.length() == 0 {
        return Err(input_error("a chat needs at least one message"));
    }
    let mut messages = Vec::with_capacity(array.length() as usize);
    for (i, m) in array.iter().enumerate() {
        if !m.is_object() || Array::is_array(&m) {
            return Err(input_error(&format!(
                "messages[{i}] must be a {{ role, content }} object, got {}",
                describe(&m)
            )));
        }
        let field = |key: &str| {
            Reflect::get(&m, &JsValue::from_str(key))
                .map_err(|_| input_error(&format!("messages[{i}].{key} cannot be read")))
        };
        let role = field("role")?;
        let role = match role.as_string() {
            Some(r) if !r.trim().is_empty() => r,
            _ => {
                return Err(input_error(&format!(
                    "messages[{i}].role must be a non-empty string such as 'system', 'user' or 'assistant', got {}",
                    describe(&role)
                )))
            }
        };
        let content = field("content")?;
        let Some(content) = content.as_string() else {
            return Err(input_error(&format!("messages[{i}].content must be a string, got {}", describe(&content))));
        };
        messages.push(ChatMessage { role, content });
    }
    Ok(messages)
}

/// A whole number in `[lo, hi]` from a JS number argument.
pub fn integer_arg(value: f64, name: &str, lo: usize, hi: usize) -> Result<usize, JsValue> {
    if !value.is_finite() || value.fract() != 0.0 || value < lo as f64 || value > hi as f64 {
        return Err(js_error(
            "input",
            &format!("invalid input: {name} must be an integer in [{lo}, {hi}], got {value}"),
        ));
    }
    Ok(value as usize)
}

/// snake_case → camelCase.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn camel_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (camel(&k), camel_keys(v))).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

/// Any serialisable value as a plain JS object with camelCase keys (non-finite floats → null).
pub fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let v = serde_json::to_value(value).map_err(|e| js_error("error", &format!("cannot convert a result: {e}")))?;
    json_to_js(&camel_keys(v))
}

/// A JSON value as a JS value.
pub fn json_to_js(v: &Value) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::camel;

    #[test]
    fn camel_case() {
        assert_eq!(camel("tokens_per_second"), "tokensPerSecond");
        assert_eq!(camel("nfe"), "nfe");
    }
}
