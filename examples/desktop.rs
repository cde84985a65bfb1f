//! Native desktop front end for blockdiff: an eframe/egui window on its wgpu renderer.
//!
//! Loads a model directory (default: the bundled demo model `models/bd3lm-shakespeare-tiny/`),
//! takes a prompt and the sampling settings, and streams the output in while the current block
//! denoises: masked slots show as `░` and fill in as the unmasking rule commits them. Generation
//! runs on a worker thread that owns the [`Session`]; the window stays responsive and Stop
//! cancels (the callback returns `false`, the session stays usable). The runtime's `Gpu` is
//! opened on the adapter eframe chose for the window (a second device on the same adapter), so
//! there is one wgpu and one copy of the model code.
//!
//! ```sh
//! cargo run --release --example desktop --features desktop -- [--model DIR]
//! ```
//!
//! Headless test mode (used by `scripts/desktop-test.sh` under Xvfb):
//! `--screenshot PATH --prompt TEXT --max-tokens N --exit-after-generate` loads the model,
//! generates, waits a few frames so the finished text is drawn, saves a PNG of the window and
//! exits 0 (1 on any error). `--check-png PATH` opens no window: it checks that a PNG exists and
//! is not blank.
//!
//! Linux: the window uses X11 (under Wayland, XWayland). With no GPU, Mesa's lavapipe works:
//! `WGPU_BACKEND=vulkan VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json`.

use blockdiff::gpu::{Gpu, GpuOptions};
use blockdiff::model::{LoadOptions, ModelFiles};
use blockdiff::sample::Stats;
use blockdiff::tokenizer::Tokenizer;
use blockdiff::{Event, GenerateOptions, Generation, Session, StopReason, Strategy};
use clap::Parser;
use eframe::egui;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Shown for a masked slot of the block being denoised.
const MASK_GLYPH: &str = "░";
const DEMO_MODEL: &str = "models/bd3lm-shakespeare-tiny";

#[derive(Parser, Debug)]
#[command(about = "blockdiff desktop: block diffusion text generation in a window")]
struct Args {
    /// Model directory (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Initial prompt.
    #[arg(long)]
    prompt: Option<String>,
    /// Initial maximum number of generated tokens.
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Initial strategy: first-hitting, ddpm, confidence, entropy-bounded.
    #[arg(long)]
    strategy: Option<Strategy>,
    /// Initial seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Generate at start-up, then save a PNG of the window here.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Also save a PNG while a block is half denoised (masked slots visible).
    #[arg(long, value_name = "PATH")]
    step_screenshot: Option<PathBuf>,
    /// Test hook for the Stop button: press it after this many denoising steps, then generate
    /// again to show the session is still usable (headless mode).
    #[arg(long, value_name = "N")]
    stop_after_steps: Option<usize>,
    /// Generate at start-up and close the window when done (after the screenshot, if any);
    /// the exit code is 0 only if loading, generating and saving all worked.
    #[arg(long)]
    exit_after_generate: bool,
    /// Open no window: check that this PNG exists and is not blank, then exit.
    #[arg(long, value_name = "PATH")]
    check_png: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    if let Some(path) = &args.check_png {
        std::process::exit(match check_png(path) {
            Ok(msg) => {
                println!("{msg}");
                0
            }
            Err(msg) => {
                eprintln!("check-png: {msg}");
                1
            }
        });
    }
    // Any failure in headless mode sets this; a window closed by the user leaves it at 0.
    let exit_code = Arc::new(AtomicI32::new(0));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("blockdiff — block diffusion")
            .with_inner_size([1100.0, 720.0])
            .with_min_inner_size([640.0, 420.0]),
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    let code = exit_code.clone();
    let result =
        eframe::run_native("blockdiff-desktop", options, Box::new(move |cc| Ok(Box::new(App::new(cc, args, code)))));
    if let Err(e) = result {
        eprintln!("desktop: could not run the window: {e}");
        std::process::exit(1);
    }
    std::process::exit(exit_code.load(Ordering::SeqCst));
}

/// The default model directory: the demo model next to the working directory, else the one in
/// this crate's checkout.
fn default_model_dir() -> PathBuf {
    let local = PathBuf::from(DEMO_MODEL);
    if local.join("config.json").exists() {
        return local;
    }
    let in_crate = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEMO_MODEL);
    if in_crate.join("config.json").exists() {
        in_crate
    } else {
        local
    }
}

// ---------------------------------------------------------------------------------------------
// Worker thread: owns the Gpu and the Session.

enum Cmd {
    Load(PathBuf),
    Generate { prompt: String, options: Box<GenerateOptions> },
}

enum Msg {
    Gpu(String),
    Loaded {
        dir: String,
        summary: String,
        block_size: usize,
    },
    LoadFailed(String),
    /// One denoising step: the generated slots of the current block (`None` = still masked).
    Step {
        block: usize,
        step: u32,
        slots: Vec<Option<String>>,
        masked: usize,
    },
    /// A block was committed: newly decoded text.
    Block(String),
    Done(Box<Generation>),
    GenerateFailed(String),
}

struct Worker {
    tx: mpsc::Sender<Cmd>,
    rx: mpsc::Receiver<Msg>,
    cancel: Arc<AtomicBool>,
}

impl Worker {
    fn spawn(ctx: egui::Context, adapter: Option<wgpu::Adapter>) -> Worker {
        let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
        let (msg_tx, msg_rx) = mpsc::channel::<Msg>();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        std::thread::Builder::new()
            .name("blockdiff-worker".into())
            .spawn(move || {
                let send = |m: Msg| {
                    let _ = msg_tx.send(m);
                    ctx.request_repaint();
                };
                worker_loop(cmd_rx, adapter, &stop, &send)
            })
            .expect("cannot spawn the worker thread");
        Worker { tx: cmd_tx, rx: msg_rx, cancel }
    }
}

fn open_gpu(adapter: Option<wgpu::Adapter>) -> blockdiff::Result<Arc<Gpu>> {
    match adapter {
        // The window's adapter: the model runs on the GPU that draws the window.
        Some(a) => pollster::block_on(Gpu::from_adapter(a, GpuOptions::default())),
        None => Gpu::new_blocking(GpuOptions::default()),
    }
}

fn worker_loop(rx: mpsc::Receiver<Cmd>, adapter: Option<wgpu::Adapter>, cancel: &AtomicBool, send: &dyn Fn(Msg)) {
    let mut adapter = adapter;
    let mut gpu: Option<Arc<Gpu>> = None;
    let mut session: Option<Loaded> = None;
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Load(dir) => {
                if gpu.is_none() {
                    match open_gpu(adapter.take()) {
                        Ok(g) => {
                            send(Msg::Gpu(g.adapter.to_string()));
                            gpu = Some(g);
                        }
                        Err(e) => {
                            send(Msg::LoadFailed(format!("cannot open the GPU: {e}")));
                            continue;
                        }
                    }
                }
                let Some(g) = &gpu else { continue };
                // Free the old model before loading the next one.
                session = None;
                match load(g, &dir) {
                    Ok(s) => {
                        let info = s.session.info();
                        let (weights, cache) = s.session.memory();
                        let summary = format!(
                            "{:?}, {} layers, hidden {}, {} heads, vocab {}, block {}, context {}, {:?} \
                             ({} weights + {} KV cache)",
                            info.architecture,
                            info.layers,
                            info.hidden,
                            info.heads,
                            info.vocab_size,
                            info.block_size,
                            info.context,
                            info.dtype,
                            human_bytes(weights),
                            human_bytes(cache)
                        );
                        session = Some(s);
                        send(Msg::Loaded { dir: dir.display().to_string(), summary, block_size: info.block_size });
                    }
                    Err(e) => send(Msg::LoadFailed(e.to_string())),
                }
            }
            Cmd::Generate { prompt, options } => {
                let Some(s) = session.as_mut() else {
                    send(Msg::GenerateFailed("no model is loaded".into()));
                    continue;
                };
                match generate(s, &prompt, &options, cancel, send) {
                    Ok(g) => send(Msg::Done(Box::new(g))),
                    Err(e) => send(Msg::GenerateFailed(e.to_string())),
                }
            }
        }
    }
}

/// A loaded model, plus a second handle to its tokenizer for the step callback (the session is
/// mutably borrowed while generating).
struct Loaded {
    session: Session,
    tokenizer: Tokenizer,
}

fn load(gpu: &Arc<Gpu>, dir: &Path) -> blockdiff::Result<Loaded> {
    let files = ModelFiles::from_dir(dir)?;
    let session = Session::load(gpu, &files, &LoadOptions::default())?;
    let bytes = files.tokenizer.as_deref().ok_or_else(|| blockdiff::Error::Tokenizer("no tokenizer.json".into()))?;
    Ok(Loaded { session, tokenizer: Tokenizer::from_bytes(bytes)? })
}

fn generate(
    loaded: &mut Loaded,
    prompt: &str,
    options: &GenerateOptions,
    cancel: &AtomicBool,
    send: &dyn Fn(Msg),
) -> blockdiff::Result<Generation> {
    let Loaded { session, tokenizer } = loaded;
    let block_size = session.info().block_size;
    // The first block starts with the prompt's tail (fixed, not generated): skip it.
    let prompt_tail = session.prompt_ids(prompt)?.len() % block_size;
    let mut on_event = |event: Event| -> bool {
        match event {
            Event::Step { block, step, tokens, mask_id, masked } => {
                let skip = if block == 0 { prompt_tail.min(tokens.len()) } else { 0 };
                let slots = tokens[skip..].iter().map(|&t| (t != mask_id).then(|| tokenizer.token_text(t))).collect();
                send(Msg::Step { block, step, slots, masked });
            }
            Event::Block { text, .. } => send(Msg::Block(text.to_string())),
        }
        !cancel.load(Ordering::SeqCst)
    };
    pollster::block_on(session.generate(prompt, options, &mut on_event))
}

// ---------------------------------------------------------------------------------------------
// The window.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Loading,
    Generating,
}

type ShotSlot = Arc<Mutex<Option<Arc<egui::ColorImage>>>>;

/// Headless driver: generate once, screenshot, maybe exit.
struct Auto {
    screenshot: Option<PathBuf>,
    step_screenshot: Option<PathBuf>,
    stop_after_steps: Option<usize>,
    exit: bool,
    runs: u32,
    steps_seen: usize,
    stop_pressed: bool,
    /// Frames drawn since the last generation finished (or failed).
    frames_after: u32,
    /// Screenshots asked for, not yet saved.
    pending: Vec<(PathBuf, ShotSlot)>,
    failed: bool,
}

impl Auto {
    fn request_shot(&mut self, ctx: &egui::Context, path: PathBuf) {
        let slot: ShotSlot = Arc::new(Mutex::new(None));
        let (target, repaint) = (slot.clone(), ctx.clone());
        ctx.request_screenshot(move |image| {
            if let Ok(mut s) = target.lock() {
                *s = Some(image);
            }
            repaint.request_repaint();
        });
        self.pending.push((path, slot));
    }

    /// Saves the screenshots that arrived; true when none is left.
    fn save_arrived(&mut self) -> bool {
        let mut failed = false;
        self.pending.retain(|(path, slot)| {
            let Some(image) = slot.lock().ok().and_then(|mut s| s.take()) else { return true };
            match save_png(path, &image) {
                Ok(()) => {
                    println!("desktop: saved {}x{} screenshot to {}", image.size[0], image.size[1], path.display())
                }
                Err(e) => {
                    eprintln!("desktop: cannot save the screenshot to {}: {e}", path.display());
                    failed = true;
                }
            }
            false
        });
        self.failed |= failed;
        self.pending.is_empty()
    }
}

struct App {
    worker: Worker,
    exit_code: Arc<AtomicI32>,
    auto: Option<Auto>,
    phase: Phase,

    model_dir: String,
    loaded: Option<(String, String)>,
    adapter: String,
    error: Option<String>,

    prompt: String,
    strategy: Strategy,
    auto_steps: bool,
    steps: u32,
    temperature: f32,
    top_p: f32,
    top_k: u32,
    seed: u64,
    max_tokens: usize,
    stop_at_eos: bool,

    /// The prompt the current output continues.
    shown_prompt: String,
    committed: String,
    block: Vec<Option<String>>,
    block_label: String,
    stats: Option<(Stats, String)>,
    last_stop: Option<StopReason>,
    stopping: bool,
}

impl App {
    fn new(cc: &eframe::CreationContext<'_>, args: Args, exit_code: Arc<AtomicI32>) -> App {
        let adapter = cc.wgpu_render_state.as_ref().map(|rs| rs.adapter.clone());
        let worker = Worker::spawn(cc.egui_ctx.clone(), adapter);
        let headless = args.screenshot.is_some() || args.step_screenshot.is_some() || args.exit_after_generate;
        let model_dir = args.model.unwrap_or_else(default_model_dir);
        let mut app = App {
            worker,
            exit_code,
            auto: headless.then(|| Auto {
                screenshot: args.screenshot,
                step_screenshot: args.step_screenshot,
                stop_after_steps: args.stop_after_steps,
                exit: args.exit_after_generate,
                runs: 0,
                steps_seen: 0,
                stop_pressed: false,
                frames_after: 0,
                pending: Vec::new(),
                failed: false,
            }),
            phase: Phase::Idle,
            model_dir: model_dir.display().to_string(),
            loaded: None,
            adapter: String::new(),
            error: None,
            prompt: args.prompt.unwrap_or_else(|| "ROMEO:\n".into()),
            strategy: args.strategy.unwrap_or(Strategy::FirstHitting),
            auto_steps: true,
            steps: 4,
            temperature: 1.0,
            top_p: 0.9,
            top_k: 0,
            seed: args.seed.unwrap_or(0),
            max_tokens: args.max_tokens.unwrap_or(128),
            stop_at_eos: true,
            shown_prompt: String::new(),
            committed: String::new(),
            block: Vec::new(),
            block_label: String::new(),
            stats: None,
            last_stop: None,
            stopping: false,
        };
        app.load();
        app
    }

    fn load(&mut self) {
        if self.phase != Phase::Idle {
            return;
        }
        self.error = None;
        self.phase = Phase::Loading;
        let _ = self.worker.tx.send(Cmd::Load(PathBuf::from(self.model_dir.trim())));
    }

    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            strategy: self.strategy,
            steps: (!self.auto_steps).then_some(self.steps),
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            max_tokens: self.max_tokens,
            seed: self.seed,
            stop_at_eos: self.stop_at_eos,
            stream_steps: true,
            ..Default::default()
        }
    }

    fn generate(&mut self) {
        if self.phase != Phase::Idle || self.loaded.is_none() {
            return;
        }
        self.error = None;
        self.phase = Phase::Generating;
        self.stopping = false;
        self.shown_prompt = self.prompt.clone();
        self.committed.clear();
        self.block.clear();
        self.block_label.clear();
        self.stats = None;
        self.last_stop = None;
        self.worker.cancel.store(false, Ordering::SeqCst);
        let _ = self.worker.tx.send(Cmd::Generate { prompt: self.prompt.clone(), options: Box::new(self.options()) });
    }

    fn stop(&mut self) {
        self.stopping = true;
        self.worker.cancel.store(true, Ordering::SeqCst);
    }

    fn fail_auto(&mut self) {
        if let Some(a) = &mut self.auto {
            a.failed = true;
        }
    }

    fn drain(&mut self, ctx: &egui::Context) {
        loop {
            let msg = match self.worker.rx.try_recv() {
                Ok(msg) => msg,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    // Only a panic ends the worker while the window lives: say so, never hang.
                    if self.error.is_none() || self.phase != Phase::Idle {
                        self.error = Some("the worker thread stopped unexpectedly; restart the app".into());
                        eprintln!("desktop: the worker thread stopped unexpectedly");
                        self.fail_auto();
                    }
                    self.phase = Phase::Idle;
                    self.loaded = None;
                    break;
                }
            };
            match msg {
                Msg::Gpu(name) => self.adapter = name,
                Msg::Loaded { dir, summary, block_size } => {
                    self.phase = Phase::Idle;
                    self.steps = block_size as u32;
                    self.loaded = Some((dir, summary));
                }
                Msg::LoadFailed(e) => {
                    self.phase = Phase::Idle;
                    self.loaded = None;
                    self.error = Some(format!("could not load the model: {e}"));
                    eprintln!("desktop: could not load the model: {e}");
                    self.fail_auto();
                }
                Msg::Step { block, step, slots, masked } => {
                    self.block_label = format!("block {block}, step {step}, {masked} masked");
                    let half_done = block >= 1 && masked > 0 && slots.iter().any(Option::is_some);
                    self.block = slots;
                    if let Some(a) = &mut self.auto {
                        a.steps_seen += 1;
                        if half_done {
                            if let Some(path) = a.step_screenshot.take() {
                                a.request_shot(ctx, path);
                            }
                        }
                        if !a.stop_pressed && a.stop_after_steps.is_some_and(|n| a.steps_seen >= n) {
                            a.stop_pressed = true;
                            println!("desktop: pressing Stop after {} steps", a.steps_seen);
                            self.stop();
                        }
                    }
                }
                Msg::Block(text) => {
                    self.committed.push_str(&text);
                    self.block.clear();
                }
                Msg::Done(g) => {
                    self.phase = Phase::Idle;
                    self.block.clear();
                    self.block_label.clear();
                    self.stats = Some((g.stats.clone(), format!("{:?}", g.stop)));
                    self.last_stop = Some(g.stop);
                    if self.auto.is_some() {
                        let s = &g.stats;
                        println!(
                            "desktop: generated {} tokens in {:.0} ms ({:.2} tokens/s), NFE {}, stop {:?}",
                            s.generated_tokens, s.elapsed_ms, s.tokens_per_second, s.nfe, g.stop
                        );
                        println!("desktop: text: {:?}", g.text);
                    }
                }
                Msg::GenerateFailed(e) => {
                    self.phase = Phase::Idle;
                    self.block.clear();
                    self.error = Some(format!("generation failed: {e}"));
                    eprintln!("desktop: generation failed: {e}");
                    self.fail_auto();
                }
            }
        }
    }

    /// Headless mode: start once the model is loaded (and once more after a test Stop); after the
    /// run, let a few frames draw the result, take the screenshot, save it and (optionally) close.
    fn drive_auto(&mut self, ctx: &egui::Context) {
        let (phase, ready, last_stop) = (self.phase, self.loaded.is_some(), self.last_stop);
        let Some(a) = &mut self.auto else { return };
        if phase != Phase::Idle {
            return;
        }
        let again = a.runs == 1 && a.stop_pressed && !a.failed;
        if again && last_stop != Some(StopReason::Cancelled) {
            eprintln!("desktop: Stop did not cancel the generation (stop reason {last_stop:?})");
            a.failed = true;
        }
        if (a.runs == 0 && ready && !a.failed) || (again && !a.failed) {
            a.runs += 1;
            a.frames_after = 0;
            self.generate();
            ctx.request_repaint();
            return;
        }
        if a.runs == 0 && !a.failed {
            return; // still loading
        }
        a.frames_after += 1;
        ctx.request_repaint();
        if a.frames_after < 3 {
            return;
        }
        if let Some(path) = a.screenshot.take() {
            a.request_shot(ctx, path);
        }
        if let Some(path) = a.step_screenshot.take() {
            eprintln!("desktop: no half-denoised block was seen, so {} was not saved", path.display());
            a.failed = true;
        }
        if !a.save_arrived() {
            return;
        }
        if a.exit {
            a.exit = false;
            self.exit_code.store(if a.failed { 1 } else { 0 }, Ordering::SeqCst);
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        let busy = self.phase != Phase::Idle;
        ui.heading("Sampling");
        ui.add_space(4.0);
        ui.add_enabled_ui(!busy, |ui| {
            egui::Grid::new("settings").num_columns(2).spacing([8.0, 6.0]).show(ui, |ui| {
                ui.label("Strategy");
                egui::ComboBox::from_id_salt("strategy").selected_text(strategy_name(self.strategy)).show_ui(
                    ui,
                    |ui| {
                        for s in
                            [Strategy::FirstHitting, Strategy::Ddpm, Strategy::Confidence, Strategy::EntropyBounded]
                        {
                            ui.selectable_value(&mut self.strategy, s, strategy_name(s));
                        }
                    },
                );
                ui.end_row();
                ui.label("Steps / block");
                ui.horizontal(|ui| {
                    ui.checkbox(&mut self.auto_steps, "auto");
                    ui.add_enabled(!self.auto_steps, egui::DragValue::new(&mut self.steps).range(1..=4096));
                });
                ui.end_row();
                ui.label("Temperature");
                ui.add(egui::Slider::new(&mut self.temperature, 0.0..=2.0));
                ui.end_row();
                ui.label("Top-p");
                ui.add(egui::Slider::new(&mut self.top_p, 0.01..=1.0));
                ui.end_row();
                ui.label("Top-k");
                ui.add(egui::DragValue::new(&mut self.top_k).range(0..=1000)).on_hover_text("0 disables top-k");
                ui.end_row();
                ui.label("Seed");
                ui.add(egui::DragValue::new(&mut self.seed));
                ui.end_row();
                ui.label("Max tokens");
                ui.add(egui::DragValue::new(&mut self.max_tokens).range(1..=4096));
                ui.end_row();
                ui.label("Stop at EOS");
                ui.checkbox(&mut self.stop_at_eos, "");
                ui.end_row();
            });
        });
        ui.add_space(10.0);
        ui.horizontal(|ui| {
            let can_generate = !busy && self.loaded.is_some();
            if ui.add_enabled(can_generate, egui::Button::new("Generate")).clicked() {
                self.generate();
            }
            let can_stop = self.phase == Phase::Generating && !self.stopping;
            if ui.add_enabled(can_stop, egui::Button::new("Stop")).clicked() {
                self.stop();
            }
        });
        if self.phase == Phase::Generating {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(if self.stopping { "stopping…" } else { "generating…" });
            });
        }
        ui.add_space(10.0);
        if let Some((s, stop)) = &self.stats {
            ui.heading("Last run");
            egui::Grid::new("stats").num_columns(2).show(ui, |ui| {
                for (k, v) in [
                    ("tokens", s.generated_tokens.to_string()),
                    ("tokens/s", format!("{:.2}", s.tokens_per_second)),
                    ("NFE", s.nfe.to_string()),
                    ("tokens/NFE", format!("{:.2}", s.tokens_per_forward)),
                    ("blocks", s.blocks.to_string()),
                    ("time", format!("{:.0} ms", s.elapsed_ms)),
                    ("stop", stop.clone()),
                ] {
                    ui.label(k);
                    ui.monospace(v);
                    ui.end_row();
                }
            });
        }
    }

    fn output_job(&self, ui: &egui::Ui) -> egui::text::LayoutJob {
        let font = egui::FontId::monospace(14.0);
        let visuals = ui.visuals();
        let fmt = |color: egui::Color32| egui::TextFormat { font_id: font.clone(), color, ..Default::default() };
        let mut job = egui::text::LayoutJob::default();
        job.wrap.max_width = ui.available_width();
        job.append(&self.shown_prompt, 0.0, fmt(visuals.weak_text_color()));
        job.append(&self.committed, 0.0, fmt(visuals.strong_text_color()));
        let fresh = egui::Color32::from_rgb(240, 190, 60);
        let masked = egui::Color32::from_rgb(110, 140, 200);
        for slot in &self.block {
            match slot {
                Some(t) => job.append(t, 0.0, fmt(fresh)),
                None => job.append(MASK_GLYPH, 0.0, fmt(masked)),
            }
        }
        job
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.drain(&ctx);
        self.drive_auto(&ctx);
        if self.phase != Phase::Idle {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }

        egui::Panel::top("model").show(ui, |ui| {
            ui.add_space(4.0);
            ui.horizontal(|ui| {
                ui.label("Model directory");
                let edit = egui::TextEdit::singleline(&mut self.model_dir).desired_width(520.0);
                let r = ui.add_enabled(self.phase == Phase::Idle, edit);
                let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.add_enabled(self.phase == Phase::Idle, egui::Button::new("Load")).clicked() || enter {
                    self.load();
                }
                if self.phase == Phase::Loading {
                    ui.spinner();
                    ui.label("loading…");
                }
            });
            match &self.loaded {
                Some((dir, summary)) => {
                    ui.label(format!("{dir}: {summary}"));
                }
                None if self.phase != Phase::Loading => {
                    ui.label("no model loaded");
                }
                None => {}
            }
            if !self.adapter.is_empty() {
                ui.weak(format!("GPU: {}", self.adapter));
            }
            if let Some(e) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            ui.add_space(4.0);
        });

        egui::Panel::left("controls").default_size(270.0).show(ui, |ui| {
            ui.add_space(6.0);
            self.controls(ui);
        });

        egui::CentralPanel::default_margins().show(ui, |ui| {
            ui.label("Prompt");
            ui.add_enabled(
                self.phase == Phase::Idle,
                egui::TextEdit::multiline(&mut self.prompt)
                    .font(egui::TextStyle::Monospace)
                    .desired_rows(3)
                    .desired_width(f32::INFINITY),
            );
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                ui.label("Output");
                if !self.block_label.is_empty() {
                    // Monospace: egui's default monospace font (Hack) has the block glyph.
                    let label = format!("— {} ({MASK_GLYPH} = masked)", self.block_label);
                    ui.label(egui::RichText::new(label).monospace().weak());
                }
            });
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_min_size(ui.available_size());
                egui::ScrollArea::vertical().stick_to_bottom(true).auto_shrink([false, false]).show(ui, |ui| {
                    let job = self.output_job(ui);
                    ui.label(job);
                });
            });
        });
    }

    fn on_exit(&mut self) {
        self.worker.cancel.store(true, Ordering::SeqCst);
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::FirstHitting => "first-hitting",
        Strategy::Ddpm => "ddpm",
        Strategy::Confidence => "confidence",
        Strategy::EntropyBounded => "entropy-bounded",
    }
}

// ---------------------------------------------------------------------------------------------
// PNG in and out.

fn save_png(path: &Path, image: &egui::ColorImage) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let [w, h] = image.size;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_srgba_unmultiplied()).collect();
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// Passes when the PNG decodes and holds more than a few distinct colours (a blank or
/// single-colour window fails).
fn check_png(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| format!("{}: {e}", path.display()))?;
    let size = reader.output_buffer_size().ok_or("image too large")?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let mut colours = std::collections::HashSet::new();
    let mut counts = std::collections::HashMap::<[u8; 3], usize>::new();
    for px in pixels.chunks_exact(channels) {
        let rgb = if channels >= 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] };
        colours.insert(rgb);
        *counts.entry(rgb).or_default() += 1;
    }
    let n = (info.width * info.height) as usize;
    let dominant = counts.values().copied().max().unwrap_or(0) as f64 / n.max(1) as f64;
    let msg = format!(
        "{}: {}x{}, {} distinct colours, most common colour covers {:.1}% of the pixels",
        path.display(),
        info.width,
        info.height,
        colours.len(),
        100.0 * dominant
    );
    if colours.len() < 16 || dominant > 0.995 {
        return Err(format!("{msg}: looks blank"));
    }
    Ok(msg)
}
