//! `Model::eval_profiled` (what `bench --profile` prints): GPU time per dispatch from
//! timestamp queries, read back as u64 ticks. It must give one plausible time per
//! dispatch, name each op, and leave the model's numbers exactly as an unprofiled step
//! would (MoE pauses run untimed in between). Needs a GPU with TIMESTAMP_QUERY (lavapipe
//! has it); the test fails, never skips, without one.

mod common;

use common::{fixture, load};
use edgeseek::LoadOptions;

fn check(name: &str) {
    let path = fixture(name);
    let opts = LoadOptions::default();
    let mut profiled = load(&path, &opts);
    let mut plain = load(&path, &opts);
    assert!(
        profiled.device().timestamps,
        "{name}: adapter '{}' has no timestamp queries",
        profiled.device().adapter_name
    );
    let prompt = [1u32, 5, 9, 2];

    let times = profiled
        .eval_profiled(&prompt)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let n_layer = profiled.config().n_layer as usize;
    assert!(
        times.len() >= 2 * n_layer,
        "{name}: {} timed dispatches for {n_layer} layers",
        times.len()
    );
    for t in &times {
        // A tick misread (the old f32-as-u64 readback) gives NaN, negatives or years.
        assert!(
            t.ns.is_finite() && t.ns >= 0.0 && t.ns < 10e9,
            "{name}: {} took {} ns",
            t.name,
            t.ns
        );
        assert!(!t.name.is_empty(), "{name}: an unnamed dispatch");
    }
    assert!(
        times.iter().map(|t| t.ns).sum::<f64>() > 0.0,
        "{name}: every dispatch took 0 ns"
    );
    assert!(
        times.iter().any(|t| t.name.starts_with("blk.0."))
            && times.iter().any(|t| t.name.starts_with("output")),
        "{name}: op names {:?}",
        times
            .iter()
            .map(|t| t.name.as_str())
            .take(8)
            .collect::<Vec<_>>()
    );

    // The profiled step leaves the same state as an unprofiled one: the next token's
    // logits agree bit for bit.
    plain.eval(&prompt).unwrap();
    let want = plain.eval(&[3]).unwrap().to_vec();
    let got = profiled.eval(&[3]).unwrap().to_vec();
    assert!(
        want.iter()
            .zip(&got)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{name}: logits after a profiled step differ from an unprofiled one"
    );
}

#[test]
fn dense_step_is_timed_per_dispatch_and_unchanged() {
    check("llama-Q4_K_M.gguf");
}

#[test]
fn moe_step_is_timed_around_its_pauses_and_unchanged() {
    check("deepseek2-lite-Q8_0.gguf");
}

#[test]
fn norms_and_swiglu_quantize_for_the_mat_ops_after_them() {
    // On the 8-bit path (CPU-backed devices) each layer's attention norm writes the
    // 8-bit blocks q, k and v read, the FFN norm those of gate and up, the SwiGLU those
    // of ffn_down (RmsNormQ8, SiluMulQ8): the only quantize dispatches left are the
    // attention output's (its input is the attention's result) and the output head's
    // (it reads the last row, xn_last). Elsewhere there are none.
    let name = "llama-Q4_0.gguf";
    let mut model = load(&fixture(name), &LoadOptions::default());
    let n_layer = model.config().n_layer as usize;
    let q8_path = model.device().q8_matvec;
    for (what, ids) in [("prefill", &[1u32, 5, 9, 2][..]), ("decode", &[3u32][..])] {
        let times = model
            .eval_profiled(ids)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let quantize: Vec<&str> = times
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| n.ends_with(".q8"))
            .collect();
        assert!(
            quantize
                .iter()
                .all(|n| n.ends_with("attn_output.q8") || *n == "output.q8"),
            "{name} {what}: quantize ops {quantize:?}"
        );
        let want = if q8_path { n_layer + 1 } else { 0 };
        assert_eq!(quantize.len(), want, "{name} {what}: {quantize:?}");
    }
}
