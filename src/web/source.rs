//! Weights read from a JS `Uint8Array` by range: the downloaded file stays in JS memory and the
//! wasm heap holds one tensor at a time while the model streams to the GPU (wasm memory never
//! shrinks, so copying the whole file in would cost its size for the page's lifetime).

use crate::error::{Error, Result};
use crate::model::checkpoint::ByteSource;
use std::borrow::Cow;

pub struct JsBytes(pub js_sys::Uint8Array);

impl ByteSource for JsBytes {
    fn len(&self) -> u64 {
        self.0.length() as u64
    }

    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let end = offset.checked_add(len as u64).filter(|&e| e <= self.len()).ok_or_else(|| {
            Error::checkpoint("model.safetensors", format!("range {offset}+{len} is past the end of the file"))
        })?;
        Ok(Cow::Owned(self.0.subarray(offset as u32, end as u32).to_vec()))
    }
}
