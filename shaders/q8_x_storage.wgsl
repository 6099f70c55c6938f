// The 8-bit activations (q8_input.wgsl) in a storage buffer: any number of tokens.
@group(0) @binding(3) var<storage, read> XQ: array<vec4<u32>>;

fn xq(i: u32) -> vec4<u32> {
    return XQ[i];
}
