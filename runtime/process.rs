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
        let n: u64 = line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(n * 1024)
    };
    Some(Rss {
        peak: kib("VmHWM:")?,
        anon: kib("RssAnon:")?,
        file: kib("RssFile:")?,
    })
}

/// Resident bytes of every mapping of `path` in this process (/proc/self/smaps):
/// after [`crate::Model::load`] a model file should have none left.
pub fn file_rss(path: &std::path::Path) -> Option<u64> {
    let path = std::fs::canonicalize(path).ok()?;
    let want = path.to_str()?;
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut total = 0;
    let mut in_file = false;
    for line in smaps.lines() {
        // Mapping headers start with an address range "start-end perms offset dev inode path".
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            in_file = line.split_whitespace().nth(5) == Some(want);
        } else if in_file {
            if let Some(kb) = line.strip_prefix("Rss:") {
                total += kb
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()?
                    * 1024;
            }
        }
    }
    Some(total)
}

/// The machine's RAM (MemTotal in /proc/meminfo; None elsewhere). On single-board
/// computers, laptops with integrated GPUs and CPU devices this is the device memory
/// too (see `model::plan::device_memory`).
pub fn host_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line["MemTotal:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
