//! `blockdiff convert`: rewrites a model's matmul weights as f32, f16, q8 or q4 (block-wise, see
//! [`crate::quant`]) into a new safetensors file, streaming tensor by tensor. Norms and biases
//! keep their stored type, other f32 matrices (BD3-LM's conditioning) become f16; `config.json` gets a `quantization`
//! block so that loading the directory needs no flag.

use super::checkpoint::Checkpoint;
use super::{bd3lm, detect, sdar, Architecture, Bd3lmConfig, ModelFiles, SdarConfig};
use crate::error::{Error, Result};
use crate::gpu::DType;
use crate::quant::{quantizable, QMatrix, GROUP};
use std::collections::BTreeMap;
use std::io::Write;

/// What a conversion did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ConvertReport {
    pub tensors: usize,
    /// Matrices written in the target type.
    pub converted: usize,
    /// Matrices left as f16 because their width is not whole groups of 32.
    pub kept_f16: usize,
    pub bytes_out: u64,
}

/// How one logical tensor is written.
enum Plan {
    /// The stored bytes, unchanged.
    Copy,
    /// A `[rows, cols]` matrix in a float type.
    Float(DType, usize, usize),
    /// A `[rows, cols]` matrix quantized (`.qweight`, `.scales`, and for q4 `.mins`).
    Quant(DType, usize, usize),
}

struct Entry {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    bytes: usize,
}

/// The matmul weights of the model in `files`: name → (rows, cols).
fn matrices(files: &ModelFiles, ck: &Checkpoint) -> Result<BTreeMap<String, (usize, usize)>> {
    let list = match detect(&files.config)? {
        Architecture::Bd3lm => bd3lm::matrices(&Bd3lmConfig::from_json(&files.config)?),
        Architecture::Sdar => sdar::matrices(&SdarConfig::from_json(&files.config)?, ck.has_weight("lm_head.weight")),
    };
    Ok(list.into_iter().map(|(n, r, c)| (n, (r, c))).collect())
}

/// The logical tensors of a checkpoint: quantized weights appear once, under their base name.
fn logical_names(ck: &Checkpoint) -> Vec<String> {
    let mut names: Vec<String> = ck
        .names()
        .into_iter()
        .filter_map(|n| {
            for suffix in [".qweight", ".scales", ".mins"] {
                if let Some(base) = n.strip_suffix(suffix) {
                    if ck.quantized(base).is_some() {
                        return (suffix == ".qweight").then(|| base.to_string());
                    }
                }
            }
            Some(n)
        })
        .collect();
    names.sort();
    names
}

fn float_name(d: DType) -> &'static str {
    if d == DType::F16 {
        "F16"
    } else {
        "F32"
    }
}

fn entries(name: &str, plan: &Plan, ck: &Checkpoint) -> Result<Vec<Entry>> {
    let e = |n: String, dtype: &'static str, shape: Vec<usize>, size: usize| Entry {
        bytes: shape.iter().product::<usize>() * size,
        name: n,
        dtype,
        shape,
    };
    Ok(match *plan {
        Plan::Copy => {
            let info = ck.info(name).ok_or_else(|| Error::checkpoint(ck.file(), format!("missing tensor '{name}'")))?;
            let dtype = info.dtype.name();
            vec![e(name.to_string(), dtype, info.shape.clone(), info.dtype.size())]
        }
        Plan::Float(d, r, c) => {
            vec![e(name.to_string(), float_name(d), vec![r, c], if d == DType::F16 { 2 } else { 4 })]
        }
        Plan::Quant(d, r, c) => {
            let mut v = vec![
                if d == DType::Q8 {
                    e(format!("{name}.qweight"), "I8", vec![r, c], 1)
                } else {
                    e(format!("{name}.qweight"), "U8", vec![r, c / 2], 1)
                },
                e(format!("{name}.scales"), "F16", vec![r, c / GROUP], 2),
            ];
            if d == DType::Q4 {
                v.push(e(format!("{name}.mins"), "F16", vec![r, c / GROUP], 2));
            }
            v
        }
    })
}

fn halves(v: &[half::f16]) -> Vec<u8> {
    v.iter().flat_map(|h| h.to_le_bytes()).collect()
}

/// The bytes of one logical tensor's entries, in entry order.
fn produce(name: &str, plan: &Plan, ck: &Checkpoint) -> Result<Vec<Vec<u8>>> {
    Ok(match *plan {
        Plan::Copy => vec![ck.bytes(name)?.1.into_owned()],
        Plan::Float(d, r, c) => {
            let v = ck.f32(name, &[r, c])?;
            vec![if d == DType::F16 {
                v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect()
            } else {
                bytemuck::cast_slice(&v).to_vec()
            }]
        }
        Plan::Quant(d, r, c) => {
            let q = match d.quant() {
                Some(f) if ck.quantized(name) == Some(f) => ck.qmatrix(name, r, c)?,
                Some(f) => QMatrix::quantize(f, &ck.f32(name, &[r, c])?, r, c),
                None => return Err(Error::options("internal: a float type in a quantized plan")),
            };
            let mut v = vec![q.data, halves(&q.scales)];
            if d == DType::Q4 {
                v.push(halves(&q.mins));
            }
            v
        }
    })
}

/// Converts the weights of `files` to `to`, writing a safetensors file to `out`, and returns the
/// new `config.json` with the report.
pub fn convert(files: &ModelFiles, to: DType, out: &mut dyn Write) -> Result<(serde_json::Value, ConvertReport)> {
    let ck = files.checkpoint()?;
    let mats = matrices(files, &ck)?;
    let mut report = ConvertReport::default();
    let names = logical_names(&ck);
    // `matrices` lists an untied SDAR head only when the checkpoint has one.
    if let Some(name) = mats.keys().find(|m| names.binary_search(m).is_err()) {
        return Err(Error::checkpoint(ck.file(), format!("missing tensor '{name}'")));
    }
    let mut plans = Vec::new();
    for name in names {
        let other_matrix = ck.info(&name).filter(|i| i.shape.len() == 2 && i.dtype == super::checkpoint::Dtype::F32);
        let plan = match mats.get(&name) {
            // Host-side matrices (BD3-LM's adaLN and timestep MLP, folded into constants at
            // load) shrink to f16 unless f32 was asked for.
            None => match other_matrix {
                Some(i) if to != DType::F32 => Plan::Float(DType::F16, i.shape[0], i.shape[1]),
                _ => Plan::Copy,
            },
            Some(&(r, c)) => {
                let keep_f16 = to.quant().is_some() && !quantizable(c);
                if keep_f16 {
                    report.kept_f16 += 1;
                } else {
                    report.converted += 1;
                }
                match to {
                    _ if keep_f16 => Plan::Float(DType::F16, r, c),
                    DType::Q8 | DType::Q4 => Plan::Quant(to, r, c),
                    d => Plan::Float(d, r, c),
                }
            }
        };
        plans.push((name, plan));
    }

    // Header first: every size is known from the shapes.
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, plan) in &plans {
        for e in entries(name, plan, &ck)? {
            header.insert(
                e.name,
                serde_json::json!({"dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, offset + e.bytes]}),
            );
            offset += e.bytes;
            report.tensors += 1;
        }
    }
    let meta = serde_json::json!({"format": "pt", "converted_by": "blockdiff", "dtype": to.name()});
    header.insert("__metadata__".into(), meta);
    let mut text = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::options(format!("could not write the header: {e}")))?;
    while (8 + text.len()) % 8 != 0 {
        text.push(b' ');
    }
    let io = |e: std::io::Error| Error::File { path: "output model.safetensors".into(), message: e.to_string() };
    out.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
    out.write_all(&text).map_err(io)?;
    for (name, plan) in &plans {
        for bytes in produce(name, plan, &ck)? {
            out.write_all(&bytes).map_err(io)?;
        }
    }
    report.bytes_out = (8 + text.len() + offset) as u64;

    let mut config = files.config.clone();
    if let Some(obj) = config.as_object_mut() {
        match to.quant() {
            Some(q) => {
                obj.insert(
                    "quantization".into(),
                    serde_json::json!({"method": "blockdiff", "format": q.name(), "bits": q.bits(), "group_size": GROUP}),
                );
            }
            None => {
                obj.remove("quantization");
            }
        }
    }
    Ok((config, report))
}

/// `convert` from one model directory to another: weights into `out/model.safetensors`, the
/// new `config.json`, and the other small files (tokenizer, chat template, generation config)
/// copied.
#[cfg(not(target_arch = "wasm32"))]
pub fn convert_dir(input: &std::path::Path, output: &std::path::Path, to: DType) -> Result<ConvertReport> {
    let file_err =
        |p: &std::path::Path, e: std::io::Error| Error::File { path: p.display().to_string(), message: e.to_string() };
    let files = ModelFiles::from_dir(input)?;
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(Error::options("the output directory must differ from the input directory"));
        }
    }
    std::fs::create_dir_all(output).map_err(|e| file_err(output, e))?;
    let weights = output.join("model.safetensors");
    let tmp = output.join("model.safetensors.partial");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| file_err(&tmp, e))?);
    let (config, report) = convert(&files, to, &mut w)?;
    w.flush().map_err(|e| file_err(&tmp, e))?;
    drop(w);
    std::fs::rename(&tmp, &weights).map_err(|e| file_err(&weights, e))?;
    let text = serde_json::to_string_pretty(&config).map_err(|e| Error::config(e.to_string()))?;
    let cfg_path = output.join("config.json");
    std::fs::write(&cfg_path, text + "\n").map_err(|e| file_err(&cfg_path, e))?;
    let skip = |n: &str| {
        n == "config.json" || n == "README.md" || n.ends_with(".safetensors") || n == "model.safetensors.index.json"
    };
    for entry in std::fs::read_dir(input).map_err(|e| file_err(input, e))? {
        let path = entry.map_err(|e| file_err(input, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_file() && !skip(name) {
            let to = output.join(name);
            std::fs::copy(&path, &to).map_err(|e| file_err(&to, e))?;
        }
    }
    Ok(report)
}
