//! Token embeddings, left in the file: each step's rows are dequantized on the CPU
//! (bit-exact with llama.cpp's reference dequantization) and written into the residual
//! stream, so the table is never resident. Only the rows of the tokens seen are read.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file::gguf::GgufFile;
use crate::file::quant;
use crate::gpu::context::GpuContext;
use crate::gpu::Buffer;
use crate::model::config::Config;
use crate::model::names;

pub(crate) struct EmbedRows {
    file: Arc<GgufFile>,
    format: quant::WeightFormat,
    offset: u64,
    row_bytes: u64,
    /// The step's rows, reused between steps: [n_tokens, n_embd] f32.
    rows: Vec<f32>,
    n_embd: usize,
}

impl EmbedRows {
    pub fn new(file: Arc<GgufFile>, cfg: &Config) -> Result<EmbedRows> {
        let t = file.tensor(names::TOKEN_EMBD).ok_or_else(|| {
            Error::bad_file(
                file.path(),
                format!("missing tensor '{}'", names::TOKEN_EMBD),
            )
        })?;
        let want = [u64::from(cfg.n_embd), u64::from(cfg.n_vocab)];
        let row_bytes = t.format.row_bytes(want[0]);
        match row_bytes {
            Some(rb) if t.dims == want && rb * want[1] == t.size => Ok(EmbedRows {
                format: t.format,
                offset: t.offset,
                row_bytes: rb,
                rows: Vec::new(),
                n_embd: cfg.n_embd as usize,
                file,
            }),
            _ => Err(Error::bad_file(
                file.path(),
                format!(
                    "tensor '{}' has shape {:?}, expected {want:?}",
                    names::TOKEN_EMBD,
                    t.dims
                ),
            )),
        }
    }

    /// x[t] = embedding of tokens[t] (ids checked against the vocabulary by the caller).
    pub fn write(&mut self, ctx: &GpuContext, tokens: &[u32], x: &Buffer) {
        self.rows.resize(tokens.len() * self.n_embd, 0.0);
        for (row, &tok) in self.rows.chunks_mut(self.n_embd).zip(tokens) {
            let start = self.offset + u64::from(tok) * self.row_bytes;
            quant::dequantize(self.format, self.file.range(start, self.row_bytes), row);
        }
        ctx.write(x, 0, bytemuck::cast_slice(&self.rows));
    }
}
