//! Records a batch of kernel dispatches and copies into one command buffer. Each dispatch's small
//! parameter block goes into one shared uniform arena, written once per batch, so recording a
//! forward pass allocates no GPU buffers.

use super::pipeline::{BindKind, KernelSource, Pipeline};
use super::Gpu;
use crate::error::{Error, Result};
use std::sync::Arc;

/// One dispatch, for callers that want to inspect a recording.
pub struct Dispatch {
    pipeline: Arc<Pipeline>,
    buffers: Vec<wgpu::Buffer>,
    uniform_offset: u64,
    uniform_size: u64,
    groups: [u32; 3],
}

enum Op {
    Dispatch(Dispatch),
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
}

pub struct Recorder {
    gpu: Arc<Gpu>,
    ops: Vec<Op>,
    uniforms: Vec<u8>,
    align: u64,
}

impl Recorder {
    pub(super) fn new(gpu: Arc<Gpu>) -> Self {
        let align = gpu.params_align();
        Recorder { gpu, ops: Vec::new(), uniforms: Vec::new(), align }
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Number of dispatches recorded so far.
    pub fn dispatches(&self) -> usize {
        self.ops.iter().filter(|o| matches!(o, Op::Dispatch(_))).count()
    }

    /// Records `kernel` (specialised by `defines`) over `groups` workgroups. `params` fills the
    /// uniform at binding 0; `buffers` fill bindings 1.. in order.
    pub fn dispatch(
        &mut self,
        kernel: &KernelSource,
        defines: &str,
        params: &[u8],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<()> {
        if buffers.len() + 1 != kernel.bindings.len() || kernel.bindings[0] != BindKind::Uniform {
            return Err(Error::Gpu(format!(
                "kernel '{}' takes {} buffers, {} given",
                kernel.name,
                kernel.bindings.len() - 1,
                buffers.len()
            )));
        }
        let max = self.gpu.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Gpu(format!(
                "kernel '{}' needs {groups:?} workgroups, the device allows {max} per dimension",
                kernel.name
            )));
        }
        let binding_cap = self.gpu.limits.max_storage_buffer_binding_size;
        if let Some(b) = buffers.iter().find(|b| b.size() > binding_cap) {
            return Err(Error::Limit {
                adapter: self.gpu.adapter.name.clone(),
                limit: "max_storage_buffer_binding_size",
                needed: b.size(),
                available: binding_cap,
            });
        }
        let pipeline = self.gpu.pipeline(kernel, defines)?;
        let uniform_offset = self.uniforms.len() as u64;
        let uniform_size = (params.len() as u64).max(16).next_multiple_of(16);
        self.uniforms.extend_from_slice(params);
        self.uniforms.resize((uniform_offset + uniform_size).next_multiple_of(self.align) as usize, 0);
        if groups.contains(&0) {
            return Ok(()); // nothing to do; keep the arena layout simple
        }
        self.ops.push(Op::Dispatch(Dispatch {
            pipeline,
            buffers: buffers.iter().map(|b| (*b).clone()).collect(),
            uniform_offset,
            uniform_size,
            groups,
        }));
        Ok(())
    }

    /// Records a buffer-to-buffer copy, ordered with the dispatches around it.
    pub fn copy(&mut self, src: &wgpu::Buffer, src_offset: u64, dst: &wgpu::Buffer, dst_offset: u64, size: u64) {
        if size == 0 {
            return;
        }
        self.ops.push(Op::Copy { src: src.clone(), src_offset, dst: dst.clone(), dst_offset, size });
    }

    /// Encodes everything into one command buffer and submits it.
    pub fn submit(self) -> Result<()> {
        let Recorder { gpu, ops, uniforms, .. } = self;
        gpu.check()?;
        gpu.submit_with_uniforms(&uniforms, |arena| encode(&gpu, &ops, arena))
    }
}

fn encode(gpu: &Gpu, ops: &[Op], arena: &wgpu::Buffer) -> wgpu::CommandBuffer {
    let mut encoder =
        gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("blockdiff batch") });
    let mut i = 0;
    while i < ops.len() {
        match &ops[i] {
            Op::Copy { src, src_offset, dst, dst_offset, size } => {
                encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                i += 1;
            }
            Op::Dispatch(_) => {
                let mut pass =
                    encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                while let Some(Op::Dispatch(d)) = ops.get(i) {
                    let mut entries = Vec::with_capacity(d.buffers.len() + 1);
                    entries.push(wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: arena,
                            offset: d.uniform_offset,
                            size: std::num::NonZeroU64::new(d.uniform_size),
                        }),
                    });
                    for (j, b) in d.buffers.iter().enumerate() {
                        entries.push(wgpu::BindGroupEntry { binding: j as u32 + 1, resource: b.as_entire_binding() });
                    }
                    let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: None,
                        layout: &d.pipeline.layout,
                        entries: &entries,
                    });
                    pass.set_pipeline(&d.pipeline.pipeline);
                    pass.set_bind_group(0, &group, &[]);
                    pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
                    i += 1;
                }
            }
        }
    }
    encoder.finish()
}

/// Splits `n` workgroups over x and y so neither exceeds the per-dimension limit; shaders
/// recover the linear index as `wg.x + wg.y * num_workgroups.x`.
pub fn grid(n: u32) -> [u32; 3] {
    const MAX: u32 = 65535;
    if n <= MAX {
        [n, 1, 1]
    } else {
        let y = n.div_ceil(MAX);
        [n.div_ceil(y), y, 1]
    }
}
