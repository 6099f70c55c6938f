// The 8-bit activations (q8_input.wgsl) of one token in a uniform buffer, for the
// matvec when they fit (XQ_UNIFORM_VEC4S, mat_q8.rs): every lane reads the same vec4s,
// and lavapipe reads a uniform buffer with straight-line code where a storage load is
// a per-lane loop (docs/performance.md).
@group(0) @binding(3) var<uniform> XQU: array<vec4<u32>, XQ_UNIFORM_VEC4S>;

fn xq(i: u32) -> vec4<u32> {
    return XQU[i];
}
