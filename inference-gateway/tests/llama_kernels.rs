//! Every Llama WGSL kernel against its plain-Rust reference (max abs error <= 1e-4), on
//! whatever Vulkan adapter the machine has (lavapipe in CI), both matvec variants included.

mod common;

use common::{gpu, max_abs_diff, random, run};
use tora_inference_gateway::kernels::{
    CachedAttentionDims, KvCacheDims, KvRow, LLAMA_HEAD_DIM, LlamaKernels, MatmulVariant, Pass, QMatrix,
    QMatvecDims, QuantFormat, RopeMode, argmax_cpu, cached_attention_cpu, gather_rows_cpu, qmatvec_cpu,
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

fn check_rms_norm(rows: usize, dim: usize, seed: u64) {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, MatmulVariant::Vec4);
    let x = random(rows * dim, seed, 3.0);
    let gamma = random(dim, seed + 1, 2.0);
    let expected = rms_norm_cpu(&x, &gamma, 1e-5);
    let (xb, gb, ob) =
        (gpu.upload_f32("x", &x), gpu.upload_f32("g", &gamma), gpu.scratch_f32("o", rows * dim));
    let got = run(&gpu, &ob, rows * dim, |pass| kernels.rms_norm(pass, [&xb, &gb, &ob], rows, dim, 1e-5));
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "{rows} x {dim}: max abs error {err}");
}

// SmolLM2's width: 144 vec4s, two and a quarter steps of the row's 64 threads.
#[test]
fn rms_norm_matches_reference() {
    check_rms_norm(3, 576, 21);
}

// Rows shorter than one step of the workgroup (most threads idle) and one past four steps.
#[test]
fn rms_norm_matches_reference_on_rows_shorter_and_longer_than_the_workgroup() {
    check_rms_norm(2, 8, 23);
    check_rms_norm(5, 1028, 25);
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
fn argmax_matches_reference_per_row_and_takes_the_first_tie() {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, MatmulVariant::Vec4);
    let len = 49152;
    let mut x = random(2 * len, 41, 10.0);
    x[30_000] = 50.0;
    x[40_000] = 50.0;
    x[len + 7] = 60.0;
    let expected: Vec<u32> = x.chunks_exact(len).map(argmax_cpu).collect();
    assert_eq!(expected, [30_000, 7]);
    let (xb, ob) = (gpu.upload_f32("x", &x), gpu.scratch_f32("o", 2));
    let got = run(&gpu, &ob, 2, |pass| kernels.argmax(pass, [&xb, &ob], 2, len));
    assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expected);
}

/// RoPE + cache store, then attention over the cache, for `rows` (slot, position) against the
/// references, in layer 1 of a cache of 2 slots x 2 layers x `positions` (heads 6, KV heads
/// 2: grouped-query), in both variants (a thread per head and row; flash-decoding). Every
/// row's own slot is filled with random values below its position, in [-scale, scale), as are
/// the new rows.
fn check_rope_store_and_cached_attention(positions: usize, scale: f32, rows: &[KvRow]) {
    for variant in [MatmulVariant::Vec4, MatmulVariant::Tiled] {
        check_rope_store_and_cached_attention_in(variant, positions, scale, rows);
    }
}

fn check_rope_store_and_cached_attention_in(
    variant: MatmulVariant,
    positions: usize,
    scale: f32,
    rows: &[KvRow],
) {
    let gpu = gpu();
    let kernels = LlamaKernels::new(&gpu.device, variant);
    let (heads, kv_heads, hd) = (6, 2, LLAMA_HEAD_DIM);
    let (qw, kw) = (heads * hd, kv_heads * hd);
    let width = qw + 2 * kw;
    let (slots, layers) = (2, 2);
    let m = rows.len();
    let table = rope_table(positions, 100_000.0);
    let (layer_offset, slot_stride) = (positions * kw, layers * positions * kw);
    let k0 = random(slots * slot_stride, 51, scale);
    let v0 = random(slots * slot_stride, 52, scale);
    let (mut k_cache, mut v_cache) = (k0.clone(), v0.clone());
    let qkv = random(m * width, 53, scale);

    // Reference: rotate and store every row, then each row attends over its own slot.
    let mut q = Vec::new();
    let mut rotated = qkv.clone();
    for (r, row) in rows.iter().zip(rotated.chunks_exact_mut(width)) {
        for head in row[..qw + kw].chunks_exact_mut(hd) {
            rope_cpu(head, r.pos, &table, RopeMode::Adjacent);
        }
        q.extend_from_slice(&row[..qw]);
        let at = r.slot * slot_stride + layer_offset + r.pos * kw;
        k_cache[at..at + kw].copy_from_slice(&row[qw..qw + kw]);
        v_cache[at..at + kw].copy_from_slice(&row[qw + kw..]);
    }
    let mut expected = Vec::new();
    for (r, qr) in rows.iter().zip(q.chunks_exact(qw)) {
        let layer =
            r.slot * slot_stride + layer_offset..r.slot * slot_stride + layer_offset + (r.pos + 1) * kw;
        let dims = CachedAttentionDims { m: 1, pos0: r.pos, heads, kv_heads };
        expected.extend(cached_attention_cpu(qr, &k_cache[layer.clone()], &v_cache[layer], dims));
    }

    let (kb, vb) = (gpu.upload_f32("k", &k0), gpu.upload_f32("v", &v0));
    let (qb, tb, ob) =
        (gpu.upload_f32("qkv", &qkv), gpu.upload_f32("rope", &table), gpu.scratch_f32("o", m * qw));
    let rb = gpu.upload_u32("rows", &KvRow::words(rows));
    let got = run(&gpu, &ob, m * qw, |pass| {
        let dims = KvCacheDims { m, heads, kv_heads, layer_offset, slot_stride };
        kernels.rope_store(pass, [&qb, &kb, &vb, &tb, &rb], dims);
        kernels.cached_attention(pass, [&qb, &kb, &vb, &ob, &rb], dims);
    });
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "{variant:?} {rows:?}: attention max abs error {err}");
    // The rotated K went into the cache where the reference put it, and nowhere else.
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    drop(Pass::new(&gpu.device, &mut encoder));
    let k_got = gpu.submit_and_read(encoder, &kb, slots * slot_stride).expect("readback");
    let k_err = max_abs_diff(&k_got, &k_cache);
    assert!(k_err <= TOLERANCE, "{variant:?} {rows:?}: k cache max abs error {k_err}");
}

/// A prefill: 2 new tokens of one sequence after 3 cached ones, in the second slot.
#[test]
fn rope_store_and_cached_attention_match_reference() {
    check_rope_store_and_cached_attention(8, 1.0, &[KvRow { slot: 1, pos: 3 }, KvRow { slot: 1, pos: 4 }]);
}

/// A batched decode step: one row from each slot, at different positions, the later slot
/// first.
#[test]
fn rope_store_and_cached_attention_keep_rows_of_two_slots_apart() {
    check_rope_store_and_cached_attention(8, 1.0, &[KvRow { slot: 1, pos: 2 }, KvRow { slot: 0, pos: 6 }]);
}

/// Decode rows deep into a long context, where each of flash-decoding's 64 threads holds a
/// partial softmax of about 11 positions and the merge's rescaling decides the answer: values
/// up to 4 make the scores peak sharply (a wrong rescale shows), and a row at position 64
/// gives one thread two positions and the others one.
#[test]
fn cached_attention_matches_reference_at_long_context_decode() {
    let rows = [KvRow { slot: 0, pos: 700 }, KvRow { slot: 1, pos: 64 }];
    check_rope_store_and_cached_attention(768, 4.0, &rows);
}

/// A prefill whose rows cross the workgroup's 64 positions: each row stops at its own
/// position, including those with more than one position per thread.
#[test]
fn cached_attention_prefill_is_causal_across_the_workgroup() {
    let rows: Vec<KvRow> = (60..70).map(|pos| KvRow { slot: 1, pos }).collect();
    check_rope_store_and_cached_attention(128, 2.0, &rows);
}
