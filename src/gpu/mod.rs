//! The GPU context: adapter and device selection, limits, optional features, buffer accounting,
//! the pipeline cache and the command recorder every kernel encodes into.

mod buffer;
mod matrix;
mod pipeline;
mod recorder;

pub use buffer::{GpuBuffer, MemStats};
pub use matrix::{DType, GpuMatrix, MatrixChunk};
pub use pipeline::{params_in_storage, specialise, BindKind, KernelSource};
pub use recorder::{grid, Dispatch, Recorder};

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// What the caller needs from the device. Limits are requested at the adapter's own maxima; the
/// `min_*` fields only decide whether the adapter is good enough at all.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    pub power_preference: wgpu::PowerPreference,
    /// Smallest acceptable `max_storage_buffer_binding_size`.
    pub min_storage_binding: u64,
    /// Ask for `SHADER_F16` when the adapter has it.
    pub allow_f16: bool,
    /// Ask for subgroup operations when the adapter has them.
    pub allow_subgroups: bool,
    /// Pretend the device binds at most this many bytes per storage buffer (tests the
    /// tensor-splitting path on adapters with generous limits).
    pub storage_binding_cap: Option<u64>,
    /// Force the matmul path (`Some(true)`: workgroup-memory tiles as on GPUs); default by
    /// adapter type. Lets the CPU-adapter tests prove the GPU path correct.
    pub tiled_matmul: Option<bool>,
    /// Force the register path's thread rows per workgroup (1, 2, 4 or 8; 8 is the fixed
    /// 32-row tile of earlier versions). Default: fitted to each matmul's rows. For benchmarks.
    pub matmul_rows: Option<u32>,
    /// Pass the parameters of kernels whose loop bounds change every step (attention over a
    /// growing cache, selection, sampling: `KernelSource::per_step_params`) in a read-only
    /// storage buffer instead of a uniform buffer. Default: on lavapipe (Vulkan, CPU), whose JIT
    /// specialises a shader on the uniform values that bound its loops and keeps every variant:
    /// host memory grew by ~0.8 MB per dispatch of such a kernel. Kernels with fixed shapes keep
    /// uniforms there, and run faster for the specialisation.
    pub params_in_storage: Option<bool>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            min_storage_binding: 16 << 20,
            allow_f16: true,
            allow_subgroups: true,
            storage_binding_cap: None,
            tiled_matmul: None,
            matmul_rows: None,
            params_in_storage: None,
        }
    }
}

/// Optional capabilities the device was opened with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuFeatures {
    pub shader_f16: bool,
    pub subgroups: bool,
    pub timestamps: bool,
}

/// A short, printable description of the adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        write!(f, ")")
    }
}

/// The device, its queue, and everything the kernels need to know about them.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pub features: GpuFeatures,
    storage_binding: u64,
    tiled_matmul: Option<bool>,
    matmul_rows: Option<u32>,
    params_in_storage: bool,
    pipelines: pipeline::PipelineCache,
    pub(crate) mem: Arc<MemStats>,
    /// Errors the device reported outside an error scope (validation, out of memory, loss).
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
    uniform_arena: Mutex<Option<wgpu::Buffer>>,
    dummy: wgpu::Buffer,
}

impl Gpu {
    /// Opens the best adapter with the limits the runtime needs.
    pub async fn new(options: GpuOptions) -> Result<Arc<Gpu>> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| Error::NoAdapter(no_adapter_hint(&e.to_string())))?;
        Self::from_adapter(adapter, options).await
    }

    /// Opens a device on an adapter chosen by the caller (e.g. a window's renderer).
    pub async fn from_adapter(adapter: wgpu::Adapter, options: GpuOptions) -> Result<Arc<Gpu>> {
        let info = adapter.get_info();
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: [info.driver.as_str(), info.driver_info.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
        };
        let available = adapter.limits();
        if available.max_storage_buffer_binding_size < options.min_storage_binding {
            return Err(Error::Limit {
                adapter: summary.name,
                limit: "max_storage_buffer_binding_size",
                needed: options.min_storage_binding,
                available: available.max_storage_buffer_binding_size,
            });
        }
        if available.max_storage_buffers_per_shader_stage < 8 {
            return Err(Error::Limit {
                adapter: summary.name,
                limit: "max_storage_buffers_per_shader_stage",
                needed: 8,
                available: available.max_storage_buffers_per_shader_stage as u64,
            });
        }
        let adapter_features = adapter.features();
        let mut wanted = wgpu::Features::empty();
        if options.allow_f16 && adapter_features.contains(wgpu::Features::SHADER_F16) {
            wanted |= wgpu::Features::SHADER_F16;
        }
        if options.allow_subgroups && adapter_features.contains(wgpu::Features::SUBGROUP) {
            wanted |= wgpu::Features::SUBGROUP;
        }
        if adapter_features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            wanted |= wgpu::Features::TIMESTAMP_QUERY;
        }
        // Ask for the adapter's own maxima: model size, not the default limits, decides what fits.
        let limits = available.clone();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("blockdiff"),
                required_features: wanted,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Device(e.to_string()))?;

        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = lost_sink.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });

        let storage_binding = options
            .storage_binding_cap
            .map_or(limits.max_storage_buffer_binding_size, |cap| cap.min(limits.max_storage_buffer_binding_size));
        let features = GpuFeatures {
            shader_f16: wanted.contains(wgpu::Features::SHADER_F16),
            subgroups: wanted.contains(wgpu::Features::SUBGROUP),
            timestamps: wanted.contains(wgpu::Features::TIMESTAMP_QUERY),
        };
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let params_in_storage =
            options.params_in_storage.unwrap_or(summary.device_type == "Cpu" && summary.backend == "Vulkan");
        Ok(Arc::new(Gpu {
            dummy,
            device,
            queue,
            adapter: summary,
            limits,
            features,
            storage_binding,
            tiled_matmul: options.tiled_matmul,
            matmul_rows: options.matmul_rows.filter(|r| [1, 2, 4, 8].contains(r)),
            params_in_storage,
            pipelines: pipeline::PipelineCache::default(),
            mem: Arc::new(MemStats::default()),
            errors,
            lost,
            uniform_arena: Mutex::new(None),
        }))
    }

    /// Blocking constructor for native callers.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(options: GpuOptions) -> Result<Arc<Gpu>> {
        pollster::block_on(Self::new(options))
    }

    /// Largest byte range one storage binding may cover (tensors above it are split).
    pub fn max_storage_binding(&self) -> u64 {
        self.storage_binding
    }

    /// Bytes of workgroup memory a kernel may use.
    pub fn workgroup_storage(&self) -> u32 {
        self.limits.max_compute_workgroup_storage_size
    }

    /// A tiny buffer for bindings a specialisation does not read.
    pub fn dummy(&self) -> &wgpu::Buffer {
        &self.dummy
    }

    /// Whether matmuls should stage tiles through workgroup memory. On CPU adapters (lavapipe,
    /// SwiftShader) barriers cost more than the cache misses they save.
    pub fn prefers_tiled(&self) -> bool {
        self.tiled_matmul.unwrap_or(self.adapter.device_type != "Cpu")
    }

    /// Whether per-step kernel parameters travel in a storage buffer (see
    /// [`GpuOptions::params_in_storage`]).
    pub fn params_in_storage(&self) -> bool {
        self.params_in_storage
    }

    /// Whether `src` reads its parameters from a storage buffer on this device.
    pub fn params_in_storage_for(&self, src: &KernelSource) -> bool {
        self.params_in_storage && src.per_step_params
    }

    /// Offset alignment of the per-dispatch parameter blocks in the arena.
    pub(crate) fn params_align(&self) -> u64 {
        let mut a = self.limits.min_uniform_buffer_offset_alignment.max(16);
        if self.params_in_storage {
            a = a.max(self.limits.min_storage_buffer_offset_alignment);
        }
        a as u64
    }

    /// The forced register-path thread rows, if any (see [`GpuOptions::matmul_rows`]).
    pub fn matmul_rows(&self) -> Option<u32> {
        self.matmul_rows
    }

    /// Live GPU buffer bytes allocated through this context.
    pub fn memory(&self) -> &MemStats {
        &self.mem
    }

    /// Fails if the device reported an error or was lost since the last check.
    pub fn check(&self) -> Result<()> {
        if let Some(reason) = self.lost.lock().ok().and_then(|l| l.clone()) {
            return Err(Error::DeviceLost(reason));
        }
        let mut errs = self.errors.lock().map_err(|_| Error::Gpu("error sink poisoned".into()))?;
        if errs.is_empty() {
            Ok(())
        } else {
            let msg = errs.join("; ");
            errs.clear();
            Err(Error::Gpu(msg))
        }
    }

    /// Whether the device was lost (the session must be recreated).
    pub fn is_lost(&self) -> bool {
        self.lost.lock().map(|l| l.is_some()).unwrap_or(true)
    }

    /// Waits for all submitted work (native); a no-op on the web, where awaiting a map does it.
    pub fn wait_idle(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        Ok(())
    }

    /// Starts recording a batch of GPU work.
    pub fn recorder(self: &Arc<Self>) -> Recorder {
        Recorder::new(self.clone())
    }

    pub(crate) fn pipeline(&self, src: &KernelSource, defines: &str) -> Result<Arc<pipeline::Pipeline>> {
        self.pipelines.get(self, src, defines)
    }

    /// Writes `uniforms` into the shared uniform arena, encodes with it, and submits, all under
    /// one lock: queue writes land at the next submission, so a second thread's write must not
    /// slip between this write and this submit.
    pub(crate) fn submit_with_uniforms(
        &self,
        uniforms: &[u8],
        encode: impl FnOnce(&wgpu::Buffer) -> wgpu::CommandBuffer,
    ) -> Result<()> {
        let mut slot = self.uniform_arena.lock().map_err(|_| Error::Gpu("arena lock poisoned".into()))?;
        let size = (uniforms.len() as u64).max(16);
        let arena = match slot.as_ref() {
            Some(buf) if buf.size() >= size => buf.clone(),
            _ => {
                let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("uniform arena"),
                    size: size.next_power_of_two().max(64 << 10),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                *slot = Some(buf.clone());
                buf
            }
        };
        if !uniforms.is_empty() {
            self.queue.write_buffer(&arena, 0, uniforms);
        }
        let commands = encode(&arena);
        self.queue.submit([commands]);
        drop(slot);
        self.check()
    }
}

fn no_adapter_hint(err: &str) -> String {
    let hint = if cfg!(target_arch = "wasm32") {
        "this browser does not expose WebGPU (try a recent Chrome/Edge, or enable WebGPU)"
    } else {
        "install a Vulkan driver (e.g. Debian's mesa-vulkan-drivers for the lavapipe software adapter) or set WGPU_BACKEND"
    };
    format!("{err}; {hint}")
}
