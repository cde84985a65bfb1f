//! Loading streams tensor by tensor: host memory peaks near the largest tensor, not the file.
//! A counting allocator (this test binary only) measures the peak of live heap bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn loading_holds_about_one_tensor_in_host_memory() {
    use blockdiff::gpu::{DType, Gpu, GpuOptions};
    use blockdiff::model::{LoadOptions, Model, ModelFiles};
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/bd3lm-shakespeare-tiny");
    let Ok(gpu) = Gpu::new_blocking(GpuOptions::default()) else {
        assert!(std::env::var_os("CI").is_none(), "no adapter in CI");
        return;
    };
    let file = std::fs::metadata(dir.join("model.safetensors")).unwrap().len() as usize;
    let largest = 4096 * 256 * 4; // the embedding and the output layer, f32
    for dtype in [DType::F32, DType::Q4] {
        let files = ModelFiles::from_dir(&dir).unwrap();
        // Warm the pipeline cache and driver so only the load's own buffers count.
        drop(Model::load(&gpu, &files, &LoadOptions { dtype: Some(dtype), ..Default::default() }).unwrap());
        let base = LIVE.load(Relaxed);
        PEAK.store(base, Relaxed);
        let model = Model::load(&gpu, &files, &LoadOptions { dtype: Some(dtype), ..Default::default() }).unwrap();
        let peak = PEAK.load(Relaxed) - base;
        eprintln!(
            "{dtype}: peak host heap during load {:.2} MB (file {:.2} MB, largest tensor {:.2} MB, GPU weights {:.2} MB)",
            peak as f64 / 1e6,
            file as f64 / 1e6,
            largest as f64 / 1e6,
            model.weight_bytes() as f64 / 1e6
        );
        // Read bytes + f32 values + the converted copy of one tensor, with room for headers.
        assert!(peak < 3 * largest, "{dtype}: peak {peak} bytes is more than three of the largest tensor");
        assert!(peak < file / 2, "{dtype}: peak {peak} bytes is not well under the file's {file}");
    }
}
