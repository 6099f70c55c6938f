//! Which routed experts occupy the GPU's expert slots: a fixed number of slots shared by
//! all MoE layers, an eviction policy for when a new expert must come in, and the
//! counters the benchmarks report. Pure bookkeeping — the slots' GPU memory is
//! [`crate::gpu::slabs`], and [`crate::model::moe`] moves the bytes.
//!
//! Slots used by work not yet submitted are pinned in the current "wave" and never
//! given up; when every slot is pinned, the caller submits its work and starts a new
//! wave ([`ExpertCache::next_wave`]).

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

/// The outcome of asking for an expert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Already in this slot.
    Hit(u32),
    /// Assigned this slot (its previous expert, if any, evicted): the caller must copy
    /// the expert's bytes in before the work that uses it.
    Miss(u32),
    /// Every slot is pinned by the current wave: submit it and start a new wave.
    Full,
}

const NONE: u32 = u32::MAX;

/// Slot assignment for the experts of every MoE layer.
pub struct ExpertCache {
    n_slots: u32,
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
    /// `n_slots` empty slots for `n_layers` layers (dense ones included) of `n_expert`
    /// experts each.
    pub fn new(n_layers: usize, n_expert: u32, n_slots: u32, policy: Eviction) -> ExpertCache {
        let n = n_slots as usize;
        ExpertCache {
            n_slots,
            policy,
            slot_of: vec![vec![NONE; n_expert as usize]; n_layers],
            owner: vec![None; n],
            last_use: vec![0; n],
            uses: vec![0; n],
            pinned_wave: vec![u64::MAX; n],
            prefetched: vec![false; n],
            tick: 0,
            wave: 0,
            misses_since_decay: 0,
            stats: ExpertStats::default(),
        }
    }

    pub fn n_slots(&self) -> u32 {
        self.n_slots
    }

    /// Work recorded so far has been submitted: its slots may be reused.
    pub fn next_wave(&mut self) {
        self.wave += 1;
    }

    /// Keeps `slot` for the current wave without counting a use: for the experts a token
    /// already holds when the cache filled up and a new wave began.
    pub fn pin(&mut self, slot: u32) {
        self.pinned_wave[slot as usize] = self.wave;
    }

    /// The slot of `expert` of `layer`: a hit, or a slot assigned to it by the policy
    /// (a miss: the caller loads it). The slot is pinned until the next wave.
    pub fn acquire(&mut self, layer: usize, expert: u32) -> Acquire {
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
        let Some(slot) = self.assign(layer, expert) else {
            return Acquire::Full;
        };
        self.stats.misses += 1;
        Acquire::Miss(slot)
    }

    /// A slot for `expert` of `layer` ahead of its use: None when it is cached already
    /// or no slot can be given up, else the slot the caller must load it into.
    pub fn prefetch(&mut self, layer: usize, expert: u32) -> Option<u32> {
        if self.slot_of[layer][expert as usize] != NONE {
            return None;
        }
        self.tick += 1;
        let slot = self.assign(layer, expert)?;
        self.prefetched[slot as usize] = true;
        self.stats.prefetched += 1;
        Some(slot)
    }

    /// Gives the policy's victim slot to `expert` of `layer`; None when every slot is
    /// pinned.
    fn assign(&mut self, layer: usize, expert: u32) -> Option<u32> {
        let slot = self.victim()?;
        if let Some((l, e)) = self.owner[slot as usize] {
            self.slot_of[l as usize][e as usize] = NONE;
            self.stats.evictions += 1;
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

    /// Records that `slot` holds `expert` of `layer` (filled at load, when all experts
    /// fit), without counting a miss.
    pub fn place(&mut self, slot: u32, layer: usize, expert: u32) {
        self.owner[slot as usize] = Some((layer as u32, expert));
        self.slot_of[layer][expert as usize] = slot;
    }

    /// Experts currently cached.
    pub fn resident(&self) -> u32 {
        self.owner.iter().filter(|o| o.is_some()).count() as u32
    }

    pub fn reset_stats(&mut self) {
        self.stats = ExpertStats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(c: &mut ExpertCache, wanted: &[(usize, u32)]) -> Vec<Acquire> {
        wanted.iter().map(|&(l, e)| c.acquire(l, e)).collect()
    }

    #[test]
    fn fills_free_slots_then_hits() {
        let mut c = ExpertCache::new(2, 4, 3, Eviction::Lru);
        use Acquire::{Hit, Miss};
        assert_eq!(
            slots(&mut c, &[(0, 1), (0, 2), (1, 1)]),
            [Miss(0), Miss(1), Miss(2)]
        );
        assert_eq!(slots(&mut c, &[(1, 1), (0, 1)]), [Hit(2), Hit(0)]);
        assert_eq!((c.stats.hits, c.stats.misses, c.stats.evictions), (2, 3, 0));
        assert_eq!(c.resident(), 3);
    }

    #[test]
    fn a_pin_keeps_a_slot_through_a_new_wave_without_counting() {
        let mut c = ExpertCache::new(1, 8, 2, Eviction::Lru);
        assert_eq!(c.acquire(0, 0), Acquire::Miss(0));
        assert_eq!(c.acquire(0, 1), Acquire::Miss(1));
        assert_eq!(c.acquire(0, 2), Acquire::Full);
        c.next_wave();
        // Expert 1 (slot 1) is still needed by the token being placed: pinned, it is
        // not the victim, though expert 0 is older only by one use.
        c.pin(1);
        assert_eq!(c.acquire(0, 2), Acquire::Miss(0));
        assert_eq!(c.acquire(0, 3), Acquire::Full);
        assert_eq!(
            (c.stats.hits, c.stats.misses, c.stats.evictions),
            (0, 3, 1),
            "a pin is not a hit"
        );
    }

    #[test]
    fn slots_pinned_by_the_current_wave_are_never_evicted() {
        let mut c = ExpertCache::new(1, 8, 2, Eviction::Lru);
        assert_eq!(c.acquire(0, 0), Acquire::Miss(0));
        assert_eq!(c.acquire(0, 1), Acquire::Miss(1));
        // Both slots hold work of this wave: a third expert must wait for a new wave.
        assert_eq!(c.acquire(0, 2), Acquire::Full);
        c.next_wave();
        // Now the least recently used (expert 0, slot 0) gives way.
        assert_eq!(c.acquire(0, 2), Acquire::Miss(0));
        assert_eq!(c.stats.evictions, 1);
        // Slot 0 is pinned again; slot 1 (expert 1, not used in this wave) gives way.
        assert_eq!(c.acquire(0, 0), Acquire::Miss(1));
        assert_eq!(c.acquire(0, 3), Acquire::Full);
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut c = ExpertCache::new(1, 8, 3, Eviction::Lru);
        for e in [0, 1, 2] {
            c.acquire(0, e);
        }
        c.next_wave();
        c.acquire(0, 0); // 1 is now the least recently used
        c.next_wave();
        assert_eq!(c.acquire(0, 5), Acquire::Miss(1));
        assert_eq!(c.acquire(0, 1), Acquire::Miss(2), "then 2 goes");
    }

    #[test]
    fn frequency_evicts_the_least_used_and_old_counts_fade() {
        let mut c = ExpertCache::new(1, 8, 2, Eviction::Frequency);
        c.acquire(0, 0);
        c.acquire(0, 1); // two misses in two slots: counts halve to 0
        for _ in 0..3 {
            c.next_wave();
            c.acquire(0, 0); // expert 0: 3 uses
        }
        c.next_wave();
        c.acquire(0, 1); // expert 1: 1 use, but the most recent
        c.next_wave();
        assert_eq!(
            c.acquire(0, 7),
            Acquire::Miss(1),
            "fewest uses goes, not oldest"
        );
        // Counts halve every n_slots misses, so popularity from long ago stops
        // protecting expert 0 (3 -> 1) and the tie goes to the least recently used.
        for e in 2..6 {
            c.next_wave();
            c.acquire(0, e);
        }
        assert_eq!(c.slot_of[0][0], NONE, "expert 0 was eventually evicted");
    }

    #[test]
    fn prefetch_loads_ahead_and_counts_use() {
        let mut c = ExpertCache::new(2, 4, 4, Eviction::Lru);
        assert_eq!(c.prefetch(1, 3), Some(0));
        assert_eq!(c.prefetch(1, 3), None, "already cached");
        assert_eq!(c.acquire(1, 3), Acquire::Hit(0));
        assert_eq!(c.acquire(1, 3), Acquire::Hit(0));
        assert_eq!((c.stats.prefetched, c.stats.prefetch_used), (1, 1));
    }

    #[test]
    fn placed_experts_hit_without_counting_misses() {
        let mut c = ExpertCache::new(2, 2, 4, Eviction::Lru);
        let mut slot = 0;
        for l in 0..2 {
            for e in 0..2 {
                c.place(slot, l, e);
                slot += 1;
            }
        }
        assert_eq!(c.acquire(1, 0), Acquire::Hit(2));
        assert_eq!(c.stats.misses, 0);
        assert_eq!(c.resident(), 4);
    }
}
