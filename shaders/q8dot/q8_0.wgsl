// Integer-dot reader (interface: common.wgsl).
// Q8_0: x = q * d with signed q, so the block is d * dx * sum(q * qx). Blocks are 34
// bytes: the quants start at an even offset, read as a run (w_run_word).
fn q8w(row: u32, b: u32) -> Q8W {
    let base = row + b * 34u;
    let start = base + 2u;
    let a = start >> 2u;
    let d = w_f16(base);
    return Q8W(run4(start, a), run4(start, a + 4u), vec2<f32>(d, d), 0.0);
}
