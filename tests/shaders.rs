//! Every shader specialisation parses and validates with naga (no GPU needed).

use blockdiff::gpu::KernelSource;

fn validate(src: &KernelSource, defines: &str) -> Result<(), String> {
    check(&blockdiff::gpu::specialise(src, defines))?;
    // The variant with the parameters in a storage buffer (lavapipe) must validate too.
    let storage = blockdiff::gpu::params_in_storage(&blockdiff::gpu::specialise(src, defines));
    if !storage.contains("var<storage, read> p:") {
        return Err(format!("{}: no `var<uniform> p:` parameter block", src.name));
    }
    check(&storage)
}

fn check(text: &str) -> Result<(), String> {
    let text = text.to_string();
    let module = naga::front::wgsl::parse_str(&text).map_err(|e| e.emit_to_string(&text))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| e.emit_to_string(&text))?;
    Ok(())
}

#[test]
fn every_shader_specialisation_validates() {
    let all = blockdiff::kernels::all_specialisations();
    assert!(all.len() > 40);
    let mut failures = Vec::new();
    for (src, defines) in &all {
        if let Err(e) = validate(src, defines) {
            failures.push(format!("{} [{}]:\n{e}", src.name, defines.replace('\n', " ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_wgsl_file_is_wrapped() {
    let names: std::collections::HashSet<&str> =
        blockdiff::kernels::all_specialisations().iter().map(|(s, _)| s.name).collect();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // shaders/include: snippets the host prepends (checked below)
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(names.contains(stem.as_str()), "shaders/{stem}.wgsl has no kernel wrapper");
    }
}

#[test]
fn every_include_snippet_is_used() {
    let mut all: String = blockdiff::gpu::DType::ALL.iter().map(|d| d.wgsl_weights()).collect();
    all += blockdiff::kernels::sample::defines(false);
    all += blockdiff::kernels::sample::defines(true);
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/include")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(all.contains(&text), "a snippet in shaders/include is never prepended");
    }
}
