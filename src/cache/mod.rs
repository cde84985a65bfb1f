//! The KV cache: per layer, keys and values of committed tokens in a ring of `capacity` slots.
//!
//! BD3-LM keeps pre-RoPE keys and a sliding window of `model_length` tokens: when a commit fills
//! the window, the oldest block is dropped (the ring start moves; nothing is copied) and the
//! attention kernel re-rotates the remaining keys at window positions 0..S. SDAR keeps post-RoPE
//! keys at absolute positions and never drops. Uncommitted (denoising) blocks are written into
//! the slots after the live ones without advancing the length, so they are never "stored".

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer};

pub struct KvCache {
    /// Per layer `(keys, values)`, each `[capacity, width]` f32.
    pub layers: Vec<(GpuBuffer, GpuBuffer)>,
    /// Floats per token per layer (kv_heads * head_dim).
    pub width: usize,
    pub capacity: usize,
    /// Ring slot of the oldest live token.
    pub start: usize,
    /// Live (committed) tokens.
    pub len: usize,
    /// Sliding window: when a commit leaves `len >= window`, drop `drop` tokens from the front.
    pub window: Option<(usize, usize)>,
    /// Tokens committed since the last reset (the absolute position of the next token).
    pub committed_total: usize,
}

impl KvCache {
    pub fn new(
        gpu: &Gpu,
        layers: usize,
        width: usize,
        capacity: usize,
        window: Option<(usize, usize)>,
    ) -> Result<Self> {
        let bytes = (capacity * width * 4) as u64;
        if bytes > gpu.max_storage_binding() {
            return Err(Error::Limit {
                adapter: format!("{} (KV cache layer of {capacity} tokens)", gpu.adapter.name),
                limit: "max_storage_buffer_binding_size",
                needed: bytes,
                available: gpu.max_storage_binding(),
            });
        }
        let layers = (0..layers)
            .map(|i| {
                Ok((gpu.storage(&format!("kv cache k{i}"), bytes)?, gpu.storage(&format!("kv cache v{i}"), bytes)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers, width, capacity, start: 0, len: 0, window, committed_total: 0 })
    }

    /// Forgets every token (buffers are reused).
    pub fn reset(&mut self) {
        self.start = 0;
        self.len = 0;
        self.committed_total = 0;
    }

    /// Ring slot (before the modulo) where the next uncommitted token goes.
    pub fn next_slot(&self) -> usize {
        self.start + self.len
    }

    /// Fails unless `n` more tokens fit after the live ones.
    pub fn check_room(&self, n: usize) -> Result<()> {
        if self.len + n > self.capacity {
            return Err(Error::input(format!(
                "the KV cache holds {} of {} tokens; {n} more do not fit",
                self.len, self.capacity
            )));
        }
        Ok(())
    }

    /// Marks `n` tokens (already written at `next_slot()`) as committed, then slides the window.
    pub fn commit(&mut self, n: usize) {
        self.len += n;
        self.committed_total += n;
        if let Some((window, drop)) = self.window {
            while self.len >= window {
                self.start = (self.start + drop) % self.capacity;
                self.len -= drop;
            }
        }
    }

    /// Forgets every token after the first `len` (caches without a window only: their entries
    /// never depend on later tokens).
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if self.window.is_some() || self.start != 0 || len > self.len {
            return Err(Error::input("only an unwindowed cache can be truncated, and only shorter"));
        }
        self.len = len;
        self.committed_total = len;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.layers.iter().map(|(k, v)| k.size() + v.size()).sum()
    }
}
