//! Where each expert's bytes live in the GGUF file. The file stays mapped for the life
//! of the model; an expert is read from the mapping straight into a GPU cache slot
//! when the router asks for it.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;
use crate::file::quant::WeightFormat;

/// One projection of every expert of a layer: a 3-D tensor, expert-major.
#[derive(Clone, Copy, Debug)]
pub struct ProjInfo {
    pub format: WeightFormat,
    pub n_rows: u32,
    pub n_cols: u32,
    /// Absolute file offset of expert 0.
    pub offset: u64,
    /// Bytes of one expert's matrix.
    pub expert_bytes: u64,
}

/// The routed experts of one MoE layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerExperts {
    pub projs: [ProjInfo; 3],
}

impl LayerExperts {
    pub fn expert_bytes(&self) -> u64 {
        self.projs.iter().map(|p| p.expert_bytes).sum()
    }

    pub fn formats(&self) -> [WeightFormat; 3] {
        self.projs.map(|p| p.format)
    }
}

pub struct ExpertStore {
    file: Arc<GgufFile>,
    /// Indexed by layer; None for dense layers.
    layers: Vec<Option<LayerExperts>>,
    n_expert: u32,
}

impl ExpertStore {
    /// Locates every expert tensor and checks its shape: `tensors(l)` names layer l's
    /// gate, up and down expert tensors (None for a dense layer); every expert is
    /// `n_ff` x `n_embd` (down: `n_embd` x `n_ff`) and each tensor holds `n_expert`.
    pub fn new(
        file: Arc<GgufFile>,
        n_layer: u32,
        [n_embd, n_ff, n_expert]: [u32; 3],
        tensors: impl Fn(u32) -> Option<[String; 3]>,
    ) -> Result<ExpertStore> {
        let mut layers = Vec::with_capacity(n_layer as usize);
        for l in 0..n_layer {
            let Some(names) = tensors(l) else {
                layers.push(None);
                continue;
            };
            let mut projs = Vec::with_capacity(3);
            for (p, name) in names.iter().enumerate() {
                let (rows, cols) = if p == 2 {
                    (n_embd, n_ff)
                } else {
                    (n_ff, n_embd)
                };
                let info = file.tensor(name).ok_or_else(|| {
                    Error::bad_file(file.path(), format!("missing tensor '{name}'"))
                })?;
                let want = [u64::from(cols), u64::from(rows), u64::from(n_expert)];
                if info.dims != want {
                    return Err(Error::bad_file(
                        file.path(),
                        format!(
                            "tensor '{name}' has shape {:?}, expected {want:?} \
                             (expert_count {n_expert}, expert_feed_forward_length {n_ff})",
                            info.dims
                        ),
                    ));
                }
                let row_bytes = info.format.row_bytes(u64::from(cols)).ok_or_else(|| {
                    Error::bad_file(
                        file.path(),
                        format!(
                            "tensor '{name}': rows of {cols} do not fit {}",
                            info.format.name()
                        ),
                    )
                })?;
                let expert_bytes = row_bytes * u64::from(rows);
                if expert_bytes * u64::from(n_expert) != info.size {
                    return Err(Error::bad_file(
                        file.path(),
                        format!(
                            "tensor '{name}' holds {} bytes, expected {}",
                            info.size,
                            expert_bytes * u64::from(n_expert)
                        ),
                    ));
                }
                projs.push(ProjInfo {
                    format: info.format,
                    n_rows: rows,
                    n_cols: cols,
                    offset: info.offset,
                    expert_bytes,
                });
            }
            layers.push(Some(LayerExperts {
                projs: [projs[0], projs[1], projs[2]],
            }));
        }
        Ok(ExpertStore {
            file,
            layers,
            n_expert,
        })
    }

    pub fn layers(&self) -> impl Iterator<Item = (usize, &LayerExperts)> {
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().map(|l| (i, l)))
    }

    pub fn n_expert(&self) -> u32 {
        self.n_expert
    }

    /// Every expert of every layer, in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.layers()
            .map(|(_, l)| l.expert_bytes() * u64::from(self.n_expert))
            .sum()
    }

    /// Experts in the model (layers x experts per layer).
    pub fn total_experts(&self) -> u64 {
        self.layers().count() as u64 * u64::from(self.n_expert)
    }

    /// The mapped bytes of projection `proj` of `expert` in `layer` (checked at load).
    pub fn bytes(&self, layer: usize, expert: u32, proj: usize) -> &[u8] {
        let p = self.layers[layer].as_ref().expect("a MoE layer").projs[proj];
        let start = p.offset + u64::from(expert) * p.expert_bytes;
        self.file.range(start, p.expert_bytes)
    }

    /// Drops the mapped pages of projection `proj` of `expert` from the resident set
    /// after they were copied to the GPU (see [`GgufFile::release`]).
    pub fn release(&self, layer: usize, expert: u32, proj: usize) {
        let p = self.layers[layer].as_ref().expect("a MoE layer").projs[proj];
        let start = p.offset + u64::from(expert) * p.expert_bytes;
        self.file.release(start, p.expert_bytes);
    }
}
