//! Scripts a user runs from the docs say what they need before they do any work or write
//! anything (make_synthetic_v2_lite.py once wrote 8.9 GB and then died importing
//! llama_cpp). Each script runs under python3 with third-party modules made unimportable
//! (`sys.modules[name] = None`, which both `import` and `importlib.util.find_spec`
//! honour): it must stop within seconds with an `error:` line naming what is missing and
//! how to get it — not a traceback — and write nothing; `--help` must still work.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Every third-party module a script of ours imports.
const THIRD_PARTY: &[&str] = &["numpy", "gguf", "llama_cpp", "jinja2", "tokenizers"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python scripts the docs tell users to run.
fn scripts() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["tests/fixtures", "scripts"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // _needs.py and _common.py are modules, not scripts.
            if name.ends_with(".py") && !name.starts_with('_') {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 10, "found only {} scripts", out.len());
    out
}

/// Runs `script args` with `blocked` modules unimportable, from the repository root.
fn run_without(script: &Path, args: &[&str], blocked: &[&str]) -> (Output, Duration) {
    let runner = format!(
        "import runpy, sys\n\
         for m in {blocked:?}: sys.modules[m] = None\n\
         sys.argv = sys.argv[1:]\n\
         runpy.run_path(sys.argv[0], run_name='__main__')\n"
    );
    let start = Instant::now();
    let out = Command::new("python3")
        .arg("-c")
        .arg(runner)
        .arg(script)
        .args(args)
        .current_dir(root())
        .output()
        .expect("python3 runs (the fetch script needs it too)");
    (out, start.elapsed())
}

fn empty_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgeseek-scripts-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_script_names_missing_modules_before_it_starts() {
    for script in scripts() {
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        let out_dir = empty_dir(&name);
        let (out, took) = run_without(&script, &[out_dir.to_str().unwrap()], THIRD_PARTY);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} ran without its modules");
        assert!(
            !stderr.contains("Traceback"),
            "{name} died with a traceback instead of saying what it needs:\n{stderr}"
        );
        assert!(
            stderr.contains("error:") && (stderr.contains("install") || stderr.contains("usage")),
            "{name} did not say what it needs:\n{stderr}"
        );
        assert!(
            took < Duration::from_secs(10),
            "{name} took {took:?} to stop"
        );
        assert!(
            entries(&out_dir).is_empty(),
            "{name} wrote {:?} before stopping",
            entries(&out_dir)
        );
        std::fs::remove_dir_all(&out_dir).unwrap();
    }
}

#[test]
fn every_script_explains_itself_without_its_modules() {
    for script in scripts() {
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        let (out, _) = run_without(&script, &["--help"], THIRD_PARTY);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.to_lowercase().contains("usage"),
            "{name} --help without its modules: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The case the issue found: the 8.9 GB writer without llama-cpp-python. It must name
/// llama-cpp-python and the flag that does without it before writing a byte (or, on a
/// machine without numpy/gguf, name those first).
#[test]
fn synthetic_v2_lite_asks_for_llama_cpp_before_writing() {
    let script = root().join("tests/fixtures/make_synthetic_v2_lite.py");
    let out_dir = empty_dir("v2-lite");
    let (out, took) = run_without(&script, &[out_dir.to_str().unwrap()], &["llama_cpp"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let names_llama = stderr.contains("llama-cpp-python") && stderr.contains("--no-check");
    let names_modules = stderr.contains("pip install numpy") || stderr.contains("pip install gguf");
    assert!(
        names_llama || names_modules,
        "make_synthetic_v2_lite.py without llama_cpp:\n{stderr}"
    );
    assert!(
        entries(&out_dir).is_empty(),
        "it wrote {:?}",
        entries(&out_dir)
    );
    assert!(took < Duration::from_secs(30), "took {took:?} to stop");
    std::fs::remove_dir_all(&out_dir).unwrap();
}
