//! quant.rs's tests: the format table, and every dequantize against gguf-py.

use super::*;
use std::path::PathBuf;

/// `WeightFormat::ALL` drives the dequantize, kernel and portability tests: the
/// match is exhaustive, so a new format does not compile until it has a place here,
/// and that place must be its index in ALL.
#[test]
fn all_lists_every_format_once() {
    fn index(f: WeightFormat) -> usize {
        match f {
            WeightFormat::F32 => 0,
            WeightFormat::F16 => 1,
            WeightFormat::BF16 => 2,
            WeightFormat::Q8_0 => 3,
            WeightFormat::Q4_0 => 4,
            WeightFormat::Q4_1 => 5,
            WeightFormat::Q5_0 => 6,
            WeightFormat::Q5_1 => 7,
            WeightFormat::Q4_K => 8,
            WeightFormat::Q5_K => 9,
            WeightFormat::Q6_K => 10,
            WeightFormat::Q2_K => 11,
            WeightFormat::Q3_K => 12,
            WeightFormat::IQ4_NL => 13,
            WeightFormat::IQ4_XS => 14,
            WeightFormat::IQ2_XXS => 15,
            WeightFormat::IQ2_XS => 16,
            WeightFormat::IQ2_S => 17,
            WeightFormat::IQ3_XXS => 18,
            WeightFormat::IQ3_S => 19,
            WeightFormat::IQ1_S => 20,
            WeightFormat::IQ1_M => 21,
        }
    }
    for (i, &f) in WeightFormat::ALL.iter().enumerate() {
        assert_eq!(
            index(f),
            i,
            "{f:?} is not at its place in WeightFormat::ALL"
        );
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/quant")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run tests/fixtures/make_quant_vectors.py",
            path.display()
        )
    })
}

#[test]
fn format_table_matches_ggml() {
    let expected: [(WeightFormat, u32, &str, u32, u32); 22] = [
        (WeightFormat::F32, 0, "F32", 1, 4),
        (WeightFormat::F16, 1, "F16", 1, 2),
        (WeightFormat::BF16, 30, "BF16", 1, 2),
        (WeightFormat::Q8_0, 8, "Q8_0", 32, 34),
        (WeightFormat::Q4_0, 2, "Q4_0", 32, 18),
        (WeightFormat::Q4_1, 3, "Q4_1", 32, 20),
        (WeightFormat::Q5_0, 6, "Q5_0", 32, 22),
        (WeightFormat::Q5_1, 7, "Q5_1", 32, 24),
        (WeightFormat::Q4_K, 12, "Q4_K", 256, 144),
        (WeightFormat::Q5_K, 13, "Q5_K", 256, 176),
        (WeightFormat::Q6_K, 14, "Q6_K", 256, 210),
        (WeightFormat::Q2_K, 10, "Q2_K", 256, 84),
        (WeightFormat::Q3_K, 11, "Q3_K", 256, 110),
        (WeightFormat::IQ4_NL, 20, "IQ4_NL", 32, 18),
        (WeightFormat::IQ4_XS, 23, "IQ4_XS", 256, 136),
        (WeightFormat::IQ2_XXS, 16, "IQ2_XXS", 256, 66),
        (WeightFormat::IQ2_XS, 17, "IQ2_XS", 256, 74),
        (WeightFormat::IQ2_S, 22, "IQ2_S", 256, 82),
        (WeightFormat::IQ3_XXS, 18, "IQ3_XXS", 256, 98),
        (WeightFormat::IQ3_S, 21, "IQ3_S", 256, 110),
        (WeightFormat::IQ1_S, 19, "IQ1_S", 256, 50),
        (WeightFormat::IQ1_M, 29, "IQ1_M", 256, 56),
    ];
    for (i, (f, id, name, elems, bytes)) in expected.into_iter().enumerate() {
        assert_eq!(WeightFormat::ALL[i], f);
        assert_eq!(f.ggml_type(), id);
        assert_eq!(WeightFormat::from_ggml_type(id), Some(f));
        assert_eq!(f.name(), name);
        assert_eq!(f.block_elems(), elems);
        assert_eq!(f.block_bytes(), bytes);
    }
    for unsupported in [4, 9, 15, 24, 28, 34, 39, 1000] {
        assert_eq!(WeightFormat::from_ggml_type(unsupported), None);
    }
    assert_eq!(ggml_type_name(16), "IQ2_XXS");
    assert_eq!(ggml_type_name(10), "Q2_K");
    assert_eq!(ggml_type_name(99), "unknown");
}

#[test]
fn row_bytes_rejects_partial_blocks_and_overflow() {
    assert_eq!(WeightFormat::Q4_K.row_bytes(512), Some(288));
    assert_eq!(WeightFormat::Q4_K.row_bytes(100), None);
    assert_eq!(WeightFormat::Q8_0.row_bytes(33), None);
    assert_eq!(WeightFormat::F32.row_bytes(7), Some(28));
    assert_eq!(WeightFormat::F32.row_bytes(0), Some(0));
    assert_eq!(WeightFormat::F32.row_bytes(u64::MAX / 2), None);
}

/// Every format against gguf-py's numpy dequantize on random blocks
/// (tests/fixtures/make_quant_vectors.py).
#[test]
fn dequantize_matches_gguf_py_bit_exactly() {
    for format in WeightFormat::ALL {
        let blocks = fixture(&format!("{}.blocks", format.name()));
        let expected: Vec<f32> = fixture(&format!("{}.f32", format.name()))
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(
            format.row_bytes(expected.len() as u64),
            Some(blocks.len() as u64),
            "{}: fixture sizes disagree",
            format.name()
        );
        let mut got = vec![0.0f32; expected.len()];
        dequantize(format, &blocks, &mut got);
        // No tolerance: gguf-py computes in f32 with the same operation order as ggml,
        // and all products are exact anyway (module comment), so the bits must agree.
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g.to_bits(),
                e.to_bits(),
                "{} element {i} (block {}): got {g}, gguf-py {e}",
                format.name(),
                i / format.block_elems() as usize
            );
        }
    }
}

#[test]
fn dequantize_hand_made_blocks() {
    // Q4_0 with d = 0.5: low nibble 0 -> (0 - 8) * 0.5 at element 0, high nibble 15 ->
    // (15 - 8) * 0.5 at element 16.
    let mut b = vec![0u8; 18];
    b[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
    b[2] = 0xF0;
    let mut y = [0.0f32; 32];
    dequantize(WeightFormat::Q4_0, &b, &mut y);
    assert_eq!((y[0], y[16], y[1], y[17]), (-4.0, 3.5, -4.0, -4.0));

    // Q5_0: qh bit 16 sets the fifth bit of element 16 (16 - 16 = 0 -> +16 -> 0 after -16).
    let mut b = vec![0u8; 22];
    b[..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
    b[2..6].copy_from_slice(&(1u32 << 16 | 1).to_le_bytes());
    let mut y = [0.0f32; 32];
    dequantize(WeightFormat::Q5_0, &b, &mut y);
    assert_eq!((y[0], y[1], y[16], y[17]), (0.0, -16.0, 0.0, -16.0));

    // Q6_K: all quants 0 -> (d * sc) * (0 - 32) with scale i in sub-block i.
    let mut b = vec![0u8; 210];
    for (i, s) in b[192..208].iter_mut().enumerate() {
        *s = i as u8;
    }
    b[208..].copy_from_slice(&f16::from_f32(0.25).to_le_bytes());
    let mut y = [0.0f32; 256];
    dequantize(WeightFormat::Q6_K, &b, &mut y);
    for (i, v) in y.iter().enumerate() {
        assert_eq!(*v, 0.25 * (i / 16) as f32 * -32.0, "element {i}");
    }
}

#[test]
fn random_blocks_are_deterministic_and_finite() {
    for format in WeightFormat::ALL {
        let n_cols = 2 * format.block_elems().max(32) as usize;
        let a = random_blocks(format, 3, n_cols, 7);
        assert_eq!(a, random_blocks(format, 3, n_cols, 7));
        assert_ne!(a, random_blocks(format, 3, n_cols, 8));
        assert_eq!(a.len() as u64, 3 * format.row_bytes(n_cols as u64).unwrap());
        let mut y = vec![0.0f32; 3 * n_cols];
        dequantize(format, &a, &mut y);
        assert!(y.iter().all(|v| v.is_finite()), "{}", format.name());
    }
}
