//! The browser API: a wasm-bindgen layer over [`Session`], used by the hand-written JS wrapper
//! of the npm package (`web/js/blockdiff.js`), which fetches and caches the model files and turns
//! the callback-based generation below into an async iterator.
//!
//! Rules of this layer: nothing may panic (wasm32 aborts on a panic, which would break every later
//! call), so every input is validated and every [`Error`](crate::Error) becomes a JS `Error` carrying the Rust
//! message and a `code`. A session runs one operation at a time: the session is moved out of its
//! slot for the duration of an operation, so a second call gets a `busy` error instead of a
//! `RefCell` panic, and `dispose()` during an operation cancels it and frees the GPU afterwards.

mod convert;
mod source;

use crate::chat::ChatTemplate;
use crate::error::Error;
use crate::gpu::{Gpu, GpuOptions};
use crate::model::{LoadOptions, ModelFiles, ModelInfo, Weights};
use crate::sample::{Event, GenerateOptions};
use crate::session::Session;
use crate::tokenizer::Tokenizer;
use convert::{from_error, js_error, to_js};
use js_sys::{Array, Function, Object, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Installs the panic hook (panics, which should not happen, are logged with their message).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version (`Cargo.toml`).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Whether `navigator.gpu` exists in this global scope (window or worker).
#[wasm_bindgen(js_name = hasWebGpu)]
pub fn has_webgpu() -> bool {
    let global = js_sys::global();
    Reflect::get(&global, &JsValue::from_str("navigator"))
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

enum State {
    Idle(Box<Session>),
    Busy,
    Disposed,
}

struct Shared {
    state: RefCell<State>,
    /// Set by `dispose()`: the running operation is cancelled and the session freed after it.
    dispose_requested: Cell<bool>,
    gpu: Arc<Gpu>,
    /// A second copy of the tokenizer for step events (the session is mutably borrowed while it
    /// generates).
    tokenizer: Tokenizer,
    info: ModelInfo,
    source: String,
    /// A copy of the chat template, so `applyChatTemplate` works while the session is busy.
    chat_template: ChatTemplate,
    /// Whether the model ships a chat template (else chat uses ChatML).
    has_chat_template: bool,
    /// The options a chat turn starts from (`generation_config.json`'s sampling defaults).
    chat_defaults: GenerateOptions,
}

impl Shared {
    /// Moves the session out for one operation.
    fn take(&self, op: &str) -> Result<Box<Session>, JsValue> {
        let mut state = self.state.borrow_mut();
        match std::mem::replace(&mut *state, State::Busy) {
            State::Idle(s) => Ok(s),
            State::Busy => Err(js_error(
                "busy",
                &format!(
                    "cannot start {op}: another operation is running on this session (await it, or cancel the generation, first)"
                ),
            )),
            State::Disposed => {
                *state = State::Disposed;
                Err(disposed_error())
            }
        }
    }

    /// Ends an operation: the session goes back to its slot, or is freed if disposed meanwhile.
    fn put_back(&self, session: Box<Session>) {
        if self.dispose_requested.get() {
            drop(session);
            self.destroy();
        } else {
            *self.state.borrow_mut() = State::Idle(session);
        }
    }

    fn destroy(&self) {
        *self.state.borrow_mut() = State::Disposed;
        // Dropping wgpu objects is a no-op on the web; destroying the device frees its memory now.
        self.gpu.device.destroy();
    }
}

/// An error of [`ChatTemplate::render`]: a template that cannot render the messages (its
/// `raise_exception`, a role it does not know) is the caller's input problem.
fn template_error(e: &Error) -> JsValue {
    match e {
        Error::Tokenizer(m) => js_error("input", &format!("invalid input: {m}")),
        e => from_error(e),
    }
}

fn disposed_error() -> JsValue {
    js_error("disposed", "this session was disposed; load the model again")
}

/// A loaded model on the browser's WebGPU device.
#[wasm_bindgen]
pub struct WebSession {
    shared: Rc<Shared>,
}

/// Loads a model from its files' bytes. `options`: `{ dtype?: 'f32' | 'f16' | 'q8' | 'q4',
/// chatTemplate?, tokenizerConfig?, generationConfig? }`: `dtype` defaults to the stored q8/q4 of
/// a converted model, else f16 when the adapter has `shader-f16`, else f32; the optional chat files are the text of `chat_template.jinja` and
/// the text (or parsed object) of `tokenizer_config.json` and `generation_config.json`.
#[wasm_bindgen(js_name = loadSession)]
pub async fn load_session(
    source: String,
    config: Vec<u8>,
    weights: js_sys::Uint8Array,
    tokenizer: Vec<u8>,
    options: JsValue,
) -> Result<WebSession, JsValue> {
    let load = convert::load_options(&options)?;
    // Cheap checks first, so a malformed file fails before a GPU device is opened.
    // The weights stay in JS memory and stream to the GPU tensor by tensor.
    let weights = Weights::Sources(vec![("model.safetensors".into(), Box::new(source::JsBytes(weights)))]);
    let files = ModelFiles::from_weights(&source, &config, weights, Some(tokenizer)).map_err(|e| from_error(&e))?;
    drop(config);
    let files = ModelFiles {
        chat_template: load.chat_template,
        tokenizer_config: load.tokenizer_config,
        generation_config: load.generation_config,
        ..files
    };
    let has_chat_template = files.chat_template.is_some()
        || files.tokenizer_config.as_ref().and_then(|c| c.get("chat_template")).is_some_and(|t| t.is_string());
    let chat_template = ChatTemplate::new(files.chat_template.as_deref(), files.tokenizer_config.as_ref())
        .map_err(|e| from_error(&e))?;
    files.checkpoint().map_err(|e| from_error(&e))?;
    crate::model::detect(&files.config).map_err(|e| from_error(&e))?;
    let tok = Tokenizer::from_bytes(files.tokenizer.as_deref().unwrap_or_default()).map_err(|e| from_error(&e))?;
    if !has_webgpu() {
        return Err(js_error(
            "no-webgpu",
            "WebGPU is not available: navigator.gpu is missing (use a browser with WebGPU enabled, over https or localhost)",
        ));
    }
    let gpu = Gpu::new(GpuOptions::default()).await.map_err(|e| from_error(&e))?;
    let session = match Session::load(&gpu, &files, &LoadOptions { dtype: load.dtype, ..Default::default() }) {
        Ok(s) => s,
        Err(e) => {
            gpu.device.destroy();
            return Err(from_error(&e));
        }
    };
    drop(files);
    let info = session.info();
    let chat_defaults = session.default_options();
    if let Err(e) = chat_defaults.validate(info.block_size) {
        drop(session);
        gpu.device.destroy();
        return Err(js_error("config", &format!("generation_config.json: {e}")));
    }
    Ok(WebSession {
        shared: Rc::new(Shared {
            state: RefCell::new(State::Idle(Box::new(session))),
            dispose_requested: Cell::new(false),
            gpu,
            tokenizer: tok,
            info,
            source,
            chat_template,
            has_chat_template,
            chat_defaults,
        }),
    })
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

fn numbers(tokens: &[u32]) -> Array {
    tokens.iter().map(|&t| JsValue::from(t)).collect()
}

/// Converts a generation event for JS. `prompt_in_first`: how many leading positions of block 0
/// hold prompt tokens (the prompt's partial last block).
fn event_to_js(event: &Event, tokenizer: &Tokenizer, prompt_in_first: usize) -> Object {
    let obj = Object::new();
    match *event {
        Event::Step { block, step, tokens, mask_id, masked } => {
            set(&obj, "type", "step");
            set(&obj, "block", block as u32);
            set(&obj, "step", step);
            set(&obj, "tokens", numbers(tokens));
            set(&obj, "masked", masked as u32);
            set(&obj, "maskId", mask_id);
            set(&obj, "promptTokens", if block == 0 { prompt_in_first as u32 } else { 0 });
            let texts: Array = tokens
                .iter()
                .map(|&t| if t == mask_id { JsValue::NULL } else { JsValue::from_str(&tokenizer.token_text(t)) })
                .collect();
            set(&obj, "texts", texts);
        }
        Event::Block { block, tokens, text } => {
            set(&obj, "type", "block");
            set(&obj, "block", block as u32);
            set(&obj, "text", text);
            set(&obj, "tokens", numbers(tokens));
        }
    }
    obj
}

#[wasm_bindgen]
impl WebSession {
    /// Starts a generation. `on_event(event)` receives `step` and `block` events; returning
    /// `false` cancels. Resolves to `{ text, tokens, stop, stats }`. Bad options and a busy or
    /// disposed session throw synchronously.
    pub fn generate(&self, prompt: String, options: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let opts = convert::generate_options(&options, self.shared.info.block_size)?;
        let session = self.shared.take("generate")?;
        let ids = match session.prompt_ids(&prompt) {
            Ok(ids) => ids,
            Err(e) => {
                self.shared.put_back(session);
                return Err(from_error(&e));
            }
        };
        Ok(self.run(session, ids, false, opts, on_event))
    }

    /// Answers the last of `messages` (an array of `{ role, content }`), rendered with the
    /// model's chat template; the keys and values of the conversation's earlier turns stay in the
    /// KV cache and are not recomputed (`stats.reusedTokens`). `options` are those of `generate`,
    /// on top of the model's `generation_config.json` defaults. Events and result as `generate`.
    /// Bad messages or options and a busy or disposed session throw synchronously.
    pub fn chat(&self, messages: JsValue, options: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let messages = convert::chat_messages(&messages)?;
        // Rendering first: a template that rejects the messages fails before the session is taken.
        let text = self.shared.chat_template.render(&messages).map_err(|e| template_error(&e))?;
        let opts = convert::chat_options(&options, self.shared.info.block_size, self.shared.chat_defaults.clone())?;
        let session = self.shared.take("chat")?;
        let ids = match session.text_ids(&text) {
            Ok(ids) => ids,
            Err(e) => {
                self.shared.put_back(session);
                return Err(from_error(&e));
            }
        };
        Ok(self.run(session, ids, true, opts, on_event))
    }

    /// The prompt text `chat(messages)` generates after (the chat template applied, ending with
    /// the assistant's turn header). Works while an operation runs.
    #[wasm_bindgen(js_name = applyChatTemplate)]
    pub fn apply_chat_template(&self, messages: JsValue) -> Result<String, JsValue> {
        self.check_alive()?;
        let messages = convert::chat_messages(&messages)?;
        self.shared.chat_template.render(&messages).map_err(|e| template_error(&e))
    }

    /// Runs a generation after `ids` (keeping the cached prefix it shares with the last chat turn
    /// when `reuse`) and streams its events to `on_event`; the session goes back to its slot when
    /// it ends.
    fn run(
        &self,
        mut session: Box<Session>,
        ids: Vec<u32>,
        reuse: bool,
        opts: GenerateOptions,
        on_event: Function,
    ) -> Promise {
        let prompt_in_first = ids.len() % self.shared.info.block_size;
        let shared = self.shared.clone();
        future_to_promise(async move {
            let mut callback_error: Option<JsValue> = None;
            let result = {
                let mut on = |event: Event| -> bool {
                    if shared.dispose_requested.get() || callback_error.is_some() {
                        return false;
                    }
                    let obj = event_to_js(&event, &shared.tokenizer, prompt_in_first);
                    match on_event.call1(&JsValue::NULL, &obj) {
                        Ok(v) => v.as_bool() != Some(false),
                        Err(e) => {
                            callback_error = Some(e);
                            false
                        }
                    }
                };
                session.generate_ids(&ids, &opts, reuse, &mut on).await
            };
            shared.put_back(session);
            if let Some(e) = callback_error {
                return Err(e);
            }
            let generation = result.map_err(|e| from_error(&e))?;
            to_js(&generation)
        })
    }

    /// The block-diffusion NLL bound of `text`. `options`: `{ samples?: number, seed?: number }`.
    /// Resolves to `{ nll, stdErr, perplexity, tokens, samples }`.
    pub fn score(&self, text: String, options: JsValue) -> Result<Promise, JsValue> {
        let opts = convert::score_options(&options)?;
        let mut session = self.shared.take("score")?;
        let shared = self.shared.clone();
        Ok(future_to_promise(async move {
            let result = session.score(&text, &opts).await;
            shared.put_back(session);
            to_js(&result.map_err(|e| from_error(&e))?)
        }))
    }

    /// Top-`k` predictions at `n` masked positions after `prompt`. Resolves to rows
    /// `{ distance, tokens, texts, probs, entropy }`.
    pub fn probe(&self, prompt: String, n: f64, k: f64) -> Result<Promise, JsValue> {
        let n = convert::integer_arg(n, "n (masked positions)", 1, self.shared.info.context)?;
        let k = convert::integer_arg(k, "k (top-k)", 1, 32)?;
        let mut session = self.shared.take("probe")?;
        let shared = self.shared.clone();
        Ok(future_to_promise(async move {
            let result = session.probe(&prompt, n, k).await;
            shared.put_back(session);
            to_js(&result.map_err(|e| from_error(&e))?)
        }))
    }

    /// Token ids of `text` (no BOS).
    pub fn encode(&self, text: String) -> Result<Vec<u32>, JsValue> {
        self.check_alive()?;
        self.shared.tokenizer.encode(&text).map_err(|e| from_error(&e))
    }

    /// Text of token ids.
    pub fn decode(&self, ids: Vec<u32>) -> Result<String, JsValue> {
        self.check_alive()?;
        self.shared.tokenizer.decode(&ids).map_err(|e| from_error(&e))
    }

    /// Model, adapter and memory facts.
    pub fn info(&self) -> Result<JsValue, JsValue> {
        self.check_alive()?;
        let info = to_js(&self.shared.info)?;
        let obj: &Object = info.unchecked_ref();
        let gpu = &self.shared.gpu;
        let adapter = Object::new();
        set(&adapter, "name", gpu.adapter.name.as_str());
        set(&adapter, "backend", gpu.adapter.backend.as_str());
        set(&adapter, "deviceType", gpu.adapter.device_type.as_str());
        set(obj, "adapter", adapter);
        let features = Object::new();
        set(&features, "shaderF16", gpu.features.shader_f16);
        set(&features, "subgroups", gpu.features.subgroups);
        set(obj, "features", features);
        set(obj, "gpuBytes", gpu.memory().live_bytes() as f64);
        set(obj, "source", self.shared.source.as_str());
        set(obj, "chatTemplate", self.shared.has_chat_template);
        let d = &self.shared.chat_defaults;
        let defaults = Object::new();
        set(&defaults, "temperature", d.temperature);
        set(&defaults, "topP", d.top_p);
        set(&defaults, "topK", d.top_k);
        set(obj, "chatDefaults", defaults);
        set(obj, "busy", matches!(*self.shared.state.borrow(), State::Busy));
        if let State::Idle(s) = &*self.shared.state.borrow() {
            let (weights, cache) = s.memory();
            set(obj, "weightBytes", weights as f64);
            set(obj, "cacheBytes", cache as f64);
        }
        Ok(info)
    }

    /// Whether an operation is running.
    #[wasm_bindgen(getter)]
    pub fn busy(&self) -> bool {
        matches!(*self.shared.state.borrow(), State::Busy)
    }

    /// Whether `dispose()` was called.
    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.shared.dispose_requested.get()
    }

    /// Frees the GPU memory (now, or when the running operation stops, which it is asked to).
    /// Later calls fail with a `disposed` error. Calling it twice is harmless.
    pub fn dispose(&self) {
        if self.shared.dispose_requested.replace(true) {
            return;
        }
        let idle = matches!(*self.shared.state.borrow(), State::Idle(_));
        if idle {
            self.shared.destroy();
        }
    }

    fn check_alive(&self) -> Result<(), JsValue> {
        if self.shared.dispose_requested.get() {
            return Err(disposed_error());
        }
        Ok(())
    }
}
