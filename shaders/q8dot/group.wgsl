// q8w4 for formats whose blocks share no loads: four q8w (interface: common.wgsl).
// The matvec then goes block by block: holding 4 rows x 4 unpacked blocks gains no
// loads and costs registers.
fn q8w4(row: u32, b: u32) -> Q8W4 {
    return Q8W4(q8w(row, b), q8w(row, b + 1u), q8w(row, b + 2u), q8w(row, b + 3u));
}
