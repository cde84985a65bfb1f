//! Compiled compute pipelines, one per (shader, specialisation), with explicit bind group
//! layouts so a kernel can bind every declared buffer even when a specialisation leaves one unused.

use super::Gpu;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a binding is used by a shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindKind {
    Uniform,
    Read,
    ReadWrite,
}

/// A WGSL file and its binding table (binding `i` is `bindings[i]`, group 0).
#[derive(Debug)]
pub struct KernelSource {
    pub name: &'static str,
    pub wgsl: &'static str,
    pub bindings: &'static [BindKind],
    /// Whether the parameters that bound its loops change from one denoising step to the next
    /// (cache lengths, step numbers, offsets). On lavapipe such kernels read their parameters
    /// from a storage buffer; see `GpuOptions::params_in_storage`.
    pub per_step_params: bool,
}

pub struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    map: Mutex<HashMap<(&'static str, String), Arc<Pipeline>>>,
}

impl PipelineCache {
    pub(crate) fn get(&self, gpu: &Gpu, src: &KernelSource, defines: &str) -> Result<Arc<Pipeline>> {
        let key = (src.name, defines.to_string());
        if let Some(p) = self.map.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(p.clone());
        }
        let p = Arc::new(compile(gpu, src, defines)?);
        self.map.lock().map_err(|_| poisoned())?.insert(key, p.clone());
        Ok(p)
    }
}

fn poisoned() -> Error {
    Error::Gpu("pipeline cache lock poisoned".into())
}

/// The full WGSL text of a specialisation: the defines (constants, aliases, `enable`) go first.
pub fn specialise(src: &KernelSource, defines: &str) -> String {
    format!("{defines}\n{}", src.wgsl)
}

/// The parameter block `p` (binding 0) declared as a read-only storage buffer instead of a
/// uniform (see `GpuOptions::params_in_storage`).
pub fn params_in_storage(wgsl: &str) -> String {
    wgsl.replace("var<uniform> p:", "var<storage, read> p:")
}

fn compile(gpu: &Gpu, src: &KernelSource, defines: &str) -> Result<Pipeline> {
    let device = &gpu.device;
    #[cfg(not(target_arch = "wasm32"))]
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(src.name),
        source: wgpu::ShaderSource::Wgsl(
            if gpu.params_in_storage_for(src) {
                params_in_storage(&specialise(src, defines))
            } else {
                specialise(src, defines)
            }
            .into(),
        ),
    });
    let entries: Vec<wgpu::BindGroupLayoutEntry> = src
        .bindings
        .iter()
        .enumerate()
        .map(|(i, kind)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match kind {
                    BindKind::Uniform if gpu.params_in_storage_for(src) => {
                        wgpu::BufferBindingType::Storage { read_only: true }
                    }
                    BindKind::Uniform => wgpu::BufferBindingType::Uniform,
                    BindKind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    BindKind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(src.name), entries: &entries });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(src.name),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(src.name),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    // Native reports validation errors into the scope at once; on the web they reach the
    // uncaptured-error sink and surface through `Gpu::check` after the next submission.
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu(format!("compiling shader '{}' ({defines}): {e}", src.name)));
    }
    Ok(Pipeline { pipeline, layout })
}
