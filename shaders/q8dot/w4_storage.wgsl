// The weights of a q8dot kernel as a storage buffer: streamed parts (the stream ring),
// expert cache slots, the formats whose reader is faster from a buffer (buffers.rs
// Placement::of), and everything on GPUs or with DeviceOptions::buffer_weights.
@group(0) @binding(2) var<storage, read> W4: array<vec4<u32>>;  // raw GGUF blocks

// Vec4 i of the part.
fn w4(i: u32) -> vec4<u32> {
    return W4[i];
}

// Vec4s in the part (reads stay below it).
fn w4_count() -> u32 {
    return arrayLength(&W4);
}
