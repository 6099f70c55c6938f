//! What the process holds in memory, from /proc/self/status (Linux; None elsewhere).

/// Resident set sizes in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rss {
    /// Peak resident set (VmHWM).
    pub peak: u64,
    /// Anonymous memory (RssAnon): heap, and on CPU "GPUs" like lavapipe, device memory.
    pub anon: u64,
    /// File-backed pages (RssFile): what is still mapped from model files.
    pub file: u64,
}

pub fn rss() -> Option<Rss> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let n: u64 = line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(n * 1024)
    };
    Some(Rss { peak: kib("VmHWM:")?, anon: kib("RssAnon:")?, file: kib("RssFile:")? })
}
