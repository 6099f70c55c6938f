// The weights of a q8dot kernel as a storage buffer: streamed parts (the stream ring),
// expert cache slots, and everything with DeviceOptions::buffer_weights (buffers.rs
// Placement::of puts the other dense parts in textures on CPU-backed devices).
@group(0) @binding(2) var<storage, read> W4: array<vec4<u32>>;  // GGUF blocks, in the layout's order

// Vec4 i of the part.
fn w4(i: u32) -> vec4<u32> {
    return W4[i];
}

// Vec4s in the part (reads stay below it).
fn w4_count() -> u32 {
    return arrayLength(&W4);
}
