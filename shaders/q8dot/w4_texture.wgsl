// The weights of a q8dot kernel as a texture (quantized dense parts on CPU-backed
// devices: buffers.rs Placement::of): the part's bytes in its row layout's order, 16 to
// a texel (rgba32uint), rows of 2^P.w_shift texels (buffers.rs WeightTexture). On lavapipe a texel fetch is straight-line code where a storage load
// is a per-lane loop of scalar loads (docs/performance.md).
@group(0) @binding(2) var W4T: texture_2d<u32>;

// Vec4 i of the part.
fn w4(i: u32) -> vec4<u32> {
    let x = i & ((1u << P.w_shift) - 1u);
    return textureLoad(W4T, vec2<u32>(x, i >> P.w_shift), 0);
}

// Vec4s in the part (reads stay below it).
fn w4_count() -> u32 {
    let size = textureDimensions(W4T);
    return size.x * size.y;
}
