//! Every Llama WGSL kernel against its plain-Rust reference (max abs error <= 1e-4), on
//! whatever Vulkan adapter the machine has (lavapipe in CI), both matvec variants included.

mod common;

use common::{gpu, max_abs_diff, random, run};
use tora_inference_gateway::kernels::{
    CachedAttentionDims, LLAMA_HEAD_DIM, LlamaKernels, MatmulVariant, Pass, QMatrix, QMatvecDims,
    QuantFormat, RopeMode, RopeStoreDims, argmax_cpu, cached_attention_cpu, gather_rows_cpu, qmatvec_cpu,
    rms_norm_cpu, rope_cpu, rope_table, silu_mul_cpu,
};

const TOLERANCE: f32 = common::KERNEL_TOLERANCE;

/// A random quantised matrix: random bytes for the nibbles/int8s, small f16 scales.
fn random_qmatrix(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> QMatrix {
    let (block, scale_bytes) = match format {
        QuantFormat::Q4_1 => (20, 4),
        QuantFormat::Q8_0 => (34, 2),
    };
    let noise = random(rows * cols / 32 * block, seed, 1.0);
    let mut bytes = Vec::new();
    for (b, chunk) in noise.chunks_exact(block).enumerate() {
        // f16 0.0625 * (1 + b % 3) for d, and -0.5 for m: exactly representable.
        let d: u16 = [0x2c00, 0x3000, 0x3200][b % 3];
        bytes.extend(d.to_le_bytes());
        if scale_bytes == 4 {
            bytes.extend(0xb800u16.to_le_bytes());
        }
        bytes.extend(chunk[scale_bytes..].iter().map(|v| ((v + 1.0) * 127.5) as u8));
    }
    QMatrix::new(format, rows, cols, bytes).expect("shape")
}

fn check_qmatvec(
    variant: MatmulVariant,
    format: QuantFormat,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, variant);
    let w = random_qmatrix(format, n, k, 7 + n as u64);
    let x = random(m * k, 3, 1.0);
    let y0 = random(m * n, 5, 1.0);
    let expected = qmatvec_cpu(&x, &w, accumulate.then_some(y0.as_slice()));
    let (xb, wb, yb) =
        (gpu.upload_f32("x", &x), gpu.upload_u32("w", &w.gpu_words(variant)), gpu.upload_f32("y", &y0));
    let got = run(&gpu, &yb, m * n, |pass| {
        kernels.qmatvec(pass, [&xb, &wb, &yb], QMatvecDims { m, n, k, format }, accumulate)
    });
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "{variant:?} {format:?} {m}x{n}x{k}: max abs error {err}");
    assert!(expected.iter().any(|v| v.abs() > 0.5), "degenerate test data");
}

#[test]
fn q4_1_matvec_matches_reference_in_both_variants() {
    for variant in [MatmulVariant::Vec4, MatmulVariant::Tiled] {
        check_qmatvec(variant, QuantFormat::Q4_1, 1, 72, 96, false);
        check_qmatvec(variant, QuantFormat::Q4_1, 3, 130, 576, true);
    }
}

#[test]
fn q8_0_matvec_matches_reference_in_both_variants() {
    for variant in [MatmulVariant::Vec4, MatmulVariant::Tiled] {
        check_qmatvec(variant, QuantFormat::Q8_0, 1, 200, 64, false);
        check_qmatvec(variant, QuantFormat::Q8_0, 2, 65, 320, true);
    }
}

#[test]
fn q8_0_gather_matches_reference_exactly_in_both_layouts() {
    let gpu = gpu();
    let table = random_qmatrix(QuantFormat::Q8_0, 10, 96, 11);
    let ids = [3u32, 0, 9, 3];
    let expected = gather_rows_cpu(&table, &ids);
    for variant in [MatmulVariant::Vec4, MatmulVariant::Tiled] {
        let kernels = LlamaKernels::new(&gpu.device, variant);
        let (ib, tb, ob) = (
            gpu.upload_u32("ids", &ids),
            gpu.upload_u32("table", &table.gpu_words(variant)),
            gpu.scratch_f32("out", 4 * 96),
        );
        let got = run(&gpu, &ob, 4 * 96, |pass| kernels.gather_q8_0(pass, [&ib, &tb, &ob], 4, 96, 10));
        assert_eq!(got, expected, "{variant:?}");
    }
}

#[test]
fn rms_norm_matches_reference() {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, MatmulVariant::Vec4);
    let (rows, dim) = (3, 576);
    let x = random(rows * dim, 21, 3.0);
    let gamma = random(dim, 22, 2.0);
    let expected = rms_norm_cpu(&x, &gamma, 1e-5);
    let (xb, gb, ob) =
        (gpu.upload_f32("x", &x), gpu.upload_f32("g", &gamma), gpu.scratch_f32("o", rows * dim));
    let got = run(&gpu, &ob, rows * dim, |pass| kernels.rms_norm(pass, [&xb, &gb, &ob], rows, dim, 1e-5));
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "max abs error {err}");
}

#[test]
fn silu_mul_matches_reference() {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, MatmulVariant::Vec4);
    let (m, ffn) = (2, 100);
    let gu = random(m * 2 * ffn, 31, 6.0);
    let expected = silu_mul_cpu(&gu, ffn);
    let (gb, ob) = (gpu.upload_f32("gu", &gu), gpu.scratch_f32("o", m * ffn));
    let got = run(&gpu, &ob, m * ffn, |pass| kernels.silu_mul(pass, [&gb, &ob], m, ffn));
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "max abs error {err}");
}

#[test]
fn argmax_matches_reference_and_takes_the_first_tie() {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, MatmulVariant::Vec4);
    let mut x = random(49152, 41, 10.0);
    x[30_000] = 50.0;
    x[40_000] = 50.0;
    assert_eq!(argmax_cpu(&x), 30_000);
    let (xb, ob) = (gpu.upload_f32("x", &x), gpu.scratch_f32("o", 1));
    let got = run(&gpu, &ob, 1, |pass| kernels.argmax(pass, [&xb, &ob], x.len()));
    assert_eq!(got[0].to_bits(), 30_000);
}

/// RoPE + cache store, then attention over the cache, for 2 new tokens after 3 cached ones,
/// against the references (heads 6, KV heads 2: grouped-query).
#[test]
fn rope_store_and_cached_attention_match_reference() {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, MatmulVariant::Vec4);
    let (heads, kv_heads, hd) = (6, 2, LLAMA_HEAD_DIM);
    let (qw, kw) = (heads * hd, kv_heads * hd);
    let width = qw + 2 * kw;
    let (pos0, m, positions) = (3, 2, 8);
    let table = rope_table(positions, 100_000.0);
    // Cache of one earlier layer in front, to exercise the offset.
    let cache_offset = positions * kw;
    let mut k_cache = random(2 * positions * kw, 51, 1.0);
    let mut v_cache = random(2 * positions * kw, 52, 1.0);
    let qkv = random(m * width, 53, 1.0);

    // Reference: rotate, store, attend.
    let mut q = Vec::new();
    let mut rotated = qkv.clone();
    for (t, row) in rotated.chunks_exact_mut(width).enumerate() {
        for head in row[..qw + kw].chunks_exact_mut(hd) {
            rope_cpu(head, pos0 + t, &table, RopeMode::Adjacent);
        }
        q.extend_from_slice(&row[..qw]);
        let slot = cache_offset + (pos0 + t) * kw;
        k_cache[slot..slot + kw].copy_from_slice(&row[qw..qw + kw]);
        v_cache[slot..slot + kw].copy_from_slice(&row[qw + kw..]);
    }
    let layer = cache_offset..cache_offset + (pos0 + m) * kw;
    let dims = CachedAttentionDims { m, pos0, heads, kv_heads };
    let expected = cached_attention_cpu(&q, &k_cache[layer.clone()], &v_cache[layer], dims);

    let kb = gpu.upload_f32("k", &random(2 * positions * kw, 51, 1.0));
    let vb = gpu.upload_f32("v", &random(2 * positions * kw, 52, 1.0));
    let (qb, tb, ob) =
        (gpu.upload_f32("qkv", &qkv), gpu.upload_f32("rope", &table), gpu.scratch_f32("o", m * qw));
    let got = run(&gpu, &ob, m * qw, |pass| {
        let rope = RopeStoreDims { m, pos0, heads, kv_heads, cache_offset };
        kernels.rope_store(pass, [&qb, &kb, &vb, &tb], rope);
        kernels.cached_attention(pass, [&qb, &kb, &vb, &ob], dims, cache_offset);
    });
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "attention max abs error {err}");
    // The rotated K went into the cache where the reference put it.
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    drop(Pass::new(&gpu.device, &mut encoder));
    let k_got = gpu.submit_and_read(encoder, &kb, 2 * positions * kw).expect("readback");
    let k_err = max_abs_diff(&k_got, &k_cache);
    assert!(k_err <= TOLERANCE, "k cache max abs error {k_err}");
}
