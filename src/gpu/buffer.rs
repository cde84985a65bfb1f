//! GPU buffers with accounting: every byte allocated through [`GpuBuffer`] is counted while it
//! lives, so tests can prove that load/generate/dispose cycles do not leak.

use super::Gpu;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Live and peak bytes of GPU buffers.
#[derive(Debug, Default)]
pub struct MemStats {
    live_bytes: AtomicU64,
    live_buffers: AtomicU64,
    peak_bytes: AtomicU64,
}

impl MemStats {
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }
    pub fn live_buffers(&self) -> u64 {
        self.live_buffers.load(Ordering::Relaxed)
    }
    pub fn peak_bytes(&self) -> u64 {
        self.peak_bytes.load(Ordering::Relaxed)
    }
    fn add(&self, bytes: u64) {
        let now = self.live_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.live_buffers.fetch_add(1, Ordering::Relaxed);
        self.peak_bytes.fetch_max(now, Ordering::Relaxed);
    }
    fn sub(&self, bytes: u64) {
        self.live_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.live_buffers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A storage buffer owned by the runtime. Sizes are rounded up to 4 bytes.
pub struct GpuBuffer {
    buf: wgpu::Buffer,
    stats: Arc<MemStats>,
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} bytes)", self.buf.size())
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.stats.sub(self.buf.size());
    }
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buf
    }
    pub fn size(&self) -> u64 {
        self.buf.size()
    }
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_DST).union(wgpu::BufferUsages::COPY_SRC);

impl Gpu {
    fn check_size(&self, label: &str, size: u64) -> Result<()> {
        if size > self.limits.max_buffer_size {
            return Err(Error::Limit {
                adapter: format!("{} (buffer '{label}')", self.adapter.name),
                limit: "max_buffer_size",
                needed: size,
                available: self.limits.max_buffer_size,
            });
        }
        Ok(())
    }

    /// An uninitialised (zeroed) storage buffer of `size` bytes.
    pub fn storage(&self, label: &str, size: u64) -> Result<GpuBuffer> {
        let size = size.max(4).next_multiple_of(4);
        self.check_size(label, size)?;
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: STORAGE,
            mapped_at_creation: false,
        });
        self.mem.add(size);
        Ok(GpuBuffer { buf, stats: self.mem.clone() })
    }

    /// A storage buffer initialised with `data` (padded to 4 bytes). The data goes through the
    /// queue's staging belt (memory of buffers mapped at creation was not always returned to the
    /// system on drop, which leaked across load/dispose cycles).
    pub fn upload(&self, label: &str, data: &[u8]) -> Result<GpuBuffer> {
        let buf = self.storage(label, data.len() as u64)?;
        let whole = data.len() / 4 * 4;
        if whole > 0 {
            self.queue.write_buffer(&buf.buf, 0, &data[..whole]);
        }
        if whole < data.len() {
            let mut tail = data[whole..].to_vec();
            tail.resize(4, 0);
            self.queue.write_buffer(&buf.buf, whole as u64, &tail);
        }
        if data.len() >= 1 << 20 {
            // Hand big writes to the GPU now: pending writes sit in host staging memory until the
            // next submission, which would make a model load hold a second copy of the weights.
            self.queue.submit([]);
        }
        Ok(buf)
    }

    pub fn upload_f32(&self, label: &str, data: &[f32]) -> Result<GpuBuffer> {
        self.upload(label, bytemuck::cast_slice(data))
    }

    pub fn upload_u32(&self, label: &str, data: &[u32]) -> Result<GpuBuffer> {
        self.upload(label, bytemuck::cast_slice(data))
    }

    /// Overwrites the start of `buf` (ordered before the next submission).
    pub fn write(&self, buf: &GpuBuffer, offset: u64, data: &[u8]) {
        self.queue.write_buffer(&buf.buf, offset, data);
    }

    /// A mappable staging buffer for reading results back (reuse it in hot loops).
    pub fn staging(&self, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Maps `staging[..size]` after the work that fills it was submitted, and copies it out.
    pub async fn map_read(&self, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        let size = size.next_multiple_of(4);
        let slice = staging.slice(0..size);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait_idle()?;
        let mapped = rx.await.map_err(|_| Error::DeviceLost("the read-back was dropped by the device".into()))?;
        mapped.map_err(|e| match self.check() {
            Err(inner) => inner,
            Ok(()) => Error::Gpu(format!("read-back failed: {e}")),
        })?;
        let data = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("read-back: {e}")))?.to_vec();
        staging.unmap();
        self.check()?;
        Ok(data)
    }

    /// Reads `len` f32 values at element `offset` of `buf` (a convenience for tests and tools;
    /// hot loops keep their own staging buffers).
    pub async fn read_f32(&self, buf: &GpuBuffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(buf, offset as u64 * 4, len as u64 * 4).await?;
        Ok(bytemuck::cast_slice(&bytes[..len * 4]).to_vec())
    }

    pub async fn read_u32(&self, buf: &GpuBuffer, offset: usize, len: usize) -> Result<Vec<u32>> {
        let bytes = self.read_bytes(buf, offset as u64 * 4, len as u64 * 4).await?;
        Ok(bytemuck::cast_slice(&bytes[..len * 4]).to_vec())
    }

    pub async fn read_bytes(&self, buf: &GpuBuffer, offset: u64, len: u64) -> Result<Vec<u8>> {
        let size = len.max(4).next_multiple_of(4);
        let staging = self.staging(size);
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&buf.buf, offset, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        self.map_read(&staging, size).await
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f32_blocking(&self, buf: &GpuBuffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.read_f32(buf, offset, len))
    }
}
