//! GPU slots for routed experts under a byte budget shared by all layers.
//!
//! A slot holds one expert's three projections (gate, up, down), each at an offset
//! aligned for binding, in their GGUF format. Slots live in a few large buffers
//! ("slabs"). Which slot to give up when a new expert must come in is the eviction
//! policy; slots used by work not yet submitted ("pinned" in the current wave) are
//! never given up.

use std::time::Instant;

use super::store::ExpertStore;
use crate::error::{Error, Result};
use crate::gpu::buffers::{self, Uploader, WeightMatrix};
use crate::gpu::context::GpuContext;

/// Counters since load (or the last [`ExpertCache::reset_stats`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExpertStats {
    /// Routed experts found in the cache.
    pub hits: u64,
    /// Routed experts read from the file into a slot.
    pub misses: u64,
    /// Misses that replaced another expert.
    pub evictions: u64,
    /// Bytes read from the file for misses.
    pub bytes_read: u64,
    /// Time spent bringing missed experts in and waiting for slots to free.
    pub stall_ns: u64,
    /// Tokens that went through the MoE layers.
    pub tokens: u64,
    /// Prefetch: experts predicted for the next layer, and how many of them the
    /// router then chose.
    pub predicted: u64,
    pub predicted_right: u64,
    /// Experts loaded ahead by prefetch, and how many of those were then used.
    pub prefetched: u64,
    pub prefetch_used: u64,
    /// Time spent loading predicted experts (while the GPU runs the current layer).
    pub prefetch_ns: u64,
}

impl ExpertStats {
    /// Share of predicted experts the router chose.
    pub fn prediction_accuracy(&self) -> f64 {
        if self.predicted == 0 {
            0.0
        } else {
            self.predicted_right as f64 / self.predicted as f64
        }
    }

    /// Sum of two sets of counters (e.g. over benchmark repeats).
    pub fn add(&self, o: &ExpertStats) -> ExpertStats {
        ExpertStats {
            hits: self.hits + o.hits,
            misses: self.misses + o.misses,
            evictions: self.evictions + o.evictions,
            bytes_read: self.bytes_read + o.bytes_read,
            stall_ns: self.stall_ns + o.stall_ns,
            tokens: self.tokens + o.tokens,
            predicted: self.predicted + o.predicted,
            predicted_right: self.predicted_right + o.predicted_right,
            prefetched: self.prefetched + o.prefetched,
            prefetch_used: self.prefetch_used + o.prefetch_used,
            prefetch_ns: self.prefetch_ns + o.prefetch_ns,
        }
    }

    pub fn hit_rate(&self) -> f64 {
        let n = self.hits + self.misses;
        if n == 0 {
            1.0
        } else {
            self.hits as f64 / n as f64
        }
    }
}

/// Which cached expert to give up for a new one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Eviction {
    /// Least recently used.
    #[default]
    Lru,
    /// Fewest uses, with counts halved every `n_slots` misses so that old popularity
    /// fades; ties go to the least recently used.
    Frequency,
}

/// Byte offsets and sizes of the three projections inside a slot.
#[derive(Clone, Copy, Debug)]
pub struct SlotLayout {
    pub offsets: [u64; 3],
    pub sizes: [u64; 3],
    pub slot_bytes: u64,
}

/// The outcome of asking for an expert.
pub enum Acquire {
    Hit(u32),
    /// Loaded into this slot (the caller's upload is already queued).
    Miss(u32),
    /// Every slot is pinned by the current wave: submit it and start a new wave.
    Full,
}

const NONE: u32 = u32::MAX;

pub struct ExpertCache {
    slabs: Vec<wgpu::Buffer>,
    slots_per_slab: u32,
    n_slots: u32,
    layout: SlotLayout,
    policy: Eviction,
    /// [layer][expert] -> slot or NONE.
    slot_of: Vec<Vec<u32>>,
    owner: Vec<Option<(u32, u32)>>,
    last_use: Vec<u64>,
    uses: Vec<u32>,
    pinned_wave: Vec<u64>,
    /// Loaded by prefetch and not used since.
    prefetched: Vec<bool>,
    tick: u64,
    wave: u64,
    misses_since_decay: u32,
    pub stats: ExpertStats,
}

impl ExpertCache {
    /// Slot geometry for every MoE layer of `store`: each projection gets the largest
    /// size any layer needs, aligned to the device's storage offset alignment.
    pub fn slot_layout(ctx: &GpuContext, store: &ExpertStore) -> Result<SlotLayout> {
        let align = u64::from(ctx.device.limits().min_storage_buffer_offset_alignment).max(4);
        let mut sizes = [0u64; 3];
        for (_, l) in store.layers() {
            for (p, info) in l.projs.iter().enumerate() {
                let bytes = WeightMatrix::bytes_with_pad(info.format, info.n_rows, info.n_cols)
                    .ok_or_else(|| Error::Invalid("expert row size".into()))?;
                sizes[p] = sizes[p].max(bytes.next_multiple_of(align));
            }
        }
        let limit = ctx.profile.max_storage_binding;
        if let Some(&big) = sizes.iter().find(|&&s| s > limit) {
            return Err(Error::Limit {
                what: "one expert projection in a single GPU binding".into(),
                needed: big,
                limit,
            });
        }
        let offsets = [0, sizes[0], sizes[0] + sizes[1]];
        Ok(SlotLayout {
            offsets,
            sizes,
            slot_bytes: sizes.iter().sum(),
        })
    }

    pub fn new(
        ctx: &GpuContext,
        store: &ExpertStore,
        layout: SlotLayout,
        n_slots: u32,
        policy: Eviction,
    ) -> Result<ExpertCache> {
        let slab_limit = ctx.profile.max_buffer_size.min(1 << 30);
        let slots_per_slab = (slab_limit / layout.slot_bytes).clamp(1, u64::from(n_slots)) as u32;
        let n_slabs = n_slots.div_ceil(slots_per_slab);
        let slabs = (0..n_slabs)
            .map(|i| {
                let slots = slots_per_slab.min(n_slots - i * slots_per_slab);
                buffers::storage(
                    ctx,
                    &format!("expert slab {i}"),
                    u64::from(slots) * layout.slot_bytes,
                )
            })
            .collect();
        let n_layers = store.layers().map(|(i, _)| i + 1).max().unwrap_or(0);
        let n = n_slots as usize;
        Ok(ExpertCache {
            slabs,
            slots_per_slab,
            n_slots,
            layout,
            policy,
            slot_of: vec![vec![NONE; store.n_expert() as usize]; n_layers],
            owner: vec![None; n],
            last_use: vec![0; n],
            uses: vec![0; n],
            pinned_wave: vec![u64::MAX; n],
            prefetched: vec![false; n],
            tick: 0,
            wave: 0,
            misses_since_decay: 0,
            stats: ExpertStats::default(),
        })
    }

    pub fn n_slots(&self) -> u32 {
        self.n_slots
    }

    pub fn layout(&self) -> SlotLayout {
        self.layout
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.slabs.iter().map(|b| b.size()).sum()
    }

    /// The buffer and byte offset of projection `proj` of `slot`.
    pub fn slot_range(&self, slot: u32, proj: usize) -> (&wgpu::Buffer, u64) {
        let slab = &self.slabs[(slot / self.slots_per_slab) as usize];
        let offset = u64::from(slot % self.slots_per_slab) * self.layout.slot_bytes
            + self.layout.offsets[proj];
        (slab, offset)
    }

    /// Work recorded so far has been submitted: its slots may be reused.
    pub fn next_wave(&mut self) {
        self.wave += 1;
    }

    /// The slot of `expert` of `layer`, loading it (through `queue.write_buffer`, from
    /// the mapped file) on a miss. The slot is pinned until the next wave.
    pub fn acquire(
        &mut self,
        ctx: &GpuContext,
        store: &ExpertStore,
        layer: usize,
        expert: u32,
    ) -> Acquire {
        self.tick += 1;
        let cached = self.slot_of[layer][expert as usize];
        if cached != NONE {
            self.touch(cached);
            self.stats.hits += 1;
            if std::mem::take(&mut self.prefetched[cached as usize]) {
                self.stats.prefetch_used += 1;
            }
            return Acquire::Hit(cached);
        }
        let t = Instant::now();
        let Some(slot) = self.load(ctx, store, layer, expert) else {
            return Acquire::Full;
        };
        self.stats.misses += 1;
        self.stats.stall_ns += t.elapsed().as_nanos() as u64;
        Acquire::Miss(slot)
    }

    /// Loads `expert` of `layer` ahead of its use unless it is cached; false when no
    /// slot could be given up.
    pub fn prefetch(
        &mut self,
        ctx: &GpuContext,
        store: &ExpertStore,
        layer: usize,
        expert: u32,
    ) -> bool {
        if self.slot_of[layer][expert as usize] != NONE {
            return true;
        }
        self.tick += 1;
        let t = Instant::now();
        let Some(slot) = self.load(ctx, store, layer, expert) else {
            return false;
        };
        self.prefetched[slot as usize] = true;
        self.stats.prefetched += 1;
        self.stats.prefetch_ns += t.elapsed().as_nanos() as u64;
        true
    }

    /// Writes the expert into the policy's victim slot; None when every slot is pinned.
    fn load(
        &mut self,
        ctx: &GpuContext,
        store: &ExpertStore,
        layer: usize,
        expert: u32,
    ) -> Option<u32> {
        let slot = self.victim()?;
        if let Some((l, e)) = self.owner[slot as usize] {
            self.slot_of[l as usize][e as usize] = NONE;
            self.stats.evictions += 1;
        }
        for proj in 0..3 {
            let bytes = store.bytes(layer, expert, proj);
            let (buffer, offset) = self.slot_range(slot, proj);
            // Rows are whole 4-byte words for every format at the sizes we accept, but
            // write_buffer needs a multiple of 4: copy the unaligned tail separately.
            let body = bytes.len() & !3;
            ctx.queue.write_buffer(buffer, offset, &bytes[..body]);
            if body < bytes.len() {
                let mut tail = [0u8; 4];
                tail[..bytes.len() - body].copy_from_slice(&bytes[body..]);
                ctx.queue.write_buffer(buffer, offset + body as u64, &tail);
            }
            self.stats.bytes_read += bytes.len() as u64;
            store.release(layer, expert, proj);
        }
        self.owner[slot as usize] = Some((layer as u32, expert));
        self.slot_of[layer][expert as usize] = slot;
        self.uses[slot as usize] = 0;
        self.prefetched[slot as usize] = false;
        self.touch(slot);
        self.misses_since_decay += 1;
        if self.misses_since_decay >= self.n_slots {
            self.misses_since_decay = 0;
            for u in &mut self.uses {
                *u /= 2;
            }
        }
        Some(slot)
    }

    fn touch(&mut self, slot: u32) {
        let s = slot as usize;
        self.last_use[s] = self.tick;
        self.uses[s] = self.uses[s].saturating_add(1);
        self.pinned_wave[s] = self.wave;
    }

    /// A free slot, else the policy's choice among slots not pinned by this wave.
    fn victim(&self) -> Option<u32> {
        let free = (0..self.n_slots).find(|&s| self.owner[s as usize].is_none());
        if free.is_some() {
            return free;
        }
        let candidates = (0..self.n_slots).filter(|&s| self.pinned_wave[s as usize] != self.wave);
        match self.policy {
            Eviction::Lru => candidates.min_by_key(|&s| self.last_use[s as usize]),
            Eviction::Frequency => {
                candidates.min_by_key(|&s| (self.uses[s as usize], self.last_use[s as usize]))
            }
        }
    }

    /// Fills every slot with experts in (layer, expert) order at load, through the
    /// uploader's staging (used when the whole model's experts fit).
    pub fn preload(
        &mut self,
        ctx: &GpuContext,
        up: &mut Uploader,
        store: &ExpertStore,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let mut slot = 0;
        let layers: Vec<usize> = store.layers().map(|(i, _)| i).collect();
        for layer in layers {
            for expert in 0..store.n_expert() {
                if slot >= self.n_slots {
                    return Ok(());
                }
                for proj in 0..3 {
                    let bytes = store.bytes(layer, expert, proj);
                    let (buffer, offset) = self.slot_range(slot, proj);
                    up.write_at(ctx, buffer, offset, bytes)?;
                    store.release(layer, expert, proj);
                    progress(bytes.len() as u64);
                }
                self.owner[slot as usize] = Some((layer as u32, expert));
                self.slot_of[layer][expert as usize] = slot;
                slot += 1;
            }
        }
        Ok(())
    }

    /// Experts currently cached.
    pub fn resident(&self) -> u32 {
        self.owner.iter().filter(|o| o.is_some()).count() as u32
    }

    pub fn reset_stats(&mut self) {
        self.stats = ExpertStats::default();
    }
}
