//! Every WGSL kernel against its plain-Rust reference on small random inputs, on whatever
//! Vulkan adapter the machine has (lavapipe in CI). No adapter is a failure, not a skip.

mod common;

use common::{gpu, max_abs_diff, random, run};
use tora_inference_gateway::kernels::{
    Activation, AttentionDims, EmbeddingDims, EmbeddingTables, HEAD_DIM, Kernels, LayerNormDims, LinearDims,
    MatmulVariant, PoolDims, attention_cpu, embeddings_cpu, erf_approx, layer_norm_cpu, linear_cpu,
    pool_normalize_cpu, to_input_major,
};

const TOLERANCE: f32 = common::KERNEL_TOLERANCE;

fn check_linear(variant: MatmulVariant, d: LinearDims, act: Activation, seed: u64) {
    let gpu = gpu();
    let kernels = Kernels::new(&gpu.device, variant);
    let x = random(d.m * d.k, seed, 1.0);
    let w = random(d.n * d.k, seed + 1, 0.5);
    let b = random(d.n, seed + 2, 0.5);
    let expected = linear_cpu(&x, &w, &b, d, act);
    let bufs = [
        gpu.upload_f32("x", &x),
        gpu.upload_f32("wt", &to_input_major(&w, d)),
        gpu.upload_f32("b", &b),
        gpu.scratch_f32("y", d.m * d.n),
    ];
    let got = run(&gpu, &bufs[3], d.m * d.n, |pass| {
        kernels.linear(pass, [&bufs[0], &bufs[1], &bufs[2], &bufs[3]], d, act)
    });
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "{variant:?} {d:?} {act:?}: max abs error {err}");
    // A kernel that wrote nothing would leave zeros; make sure the outputs carry signal.
    assert!(expected.iter().any(|v| v.abs() > 0.1), "degenerate test data");
}

// Shapes where m is not a multiple of the row block (16 rows per vec4 invocation, 64 per
// tile), n not a multiple of the column block, and k not a multiple of the 16-wide k tile,
// so every edge guard runs.
#[test]
fn linear_vec4_matches_reference_on_ragged_shapes() {
    check_linear(MatmulVariant::Vec4, LinearDims { m: 13, n: 72, k: 40 }, Activation::None, 1);
    check_linear(MatmulVariant::Vec4, LinearDims { m: 1, n: 4, k: 4 }, Activation::None, 2);
    check_linear(MatmulVariant::Vec4, LinearDims { m: 70, n: 136, k: 96 }, Activation::None, 8);
}

#[test]
fn linear_tiled_matches_reference_on_ragged_shapes() {
    check_linear(MatmulVariant::Tiled, LinearDims { m: 13, n: 72, k: 40 }, Activation::None, 3);
    check_linear(MatmulVariant::Tiled, LinearDims { m: 70, n: 136, k: 96 }, Activation::None, 4);
}

#[test]
fn linear_with_gelu_matches_reference_in_both_variants() {
    for variant in [MatmulVariant::Vec4, MatmulVariant::Tiled] {
        check_linear(variant, LinearDims { m: 9, n: 48, k: 64 }, Activation::Gelu, 5);
    }
}

// MiniLM's real FFN shape (384 -> 1536), the largest k and n the model uses.
#[test]
fn linear_matches_reference_at_minilm_ffn_shape() {
    for variant in [MatmulVariant::Vec4, MatmulVariant::Tiled] {
        check_linear(variant, LinearDims { m: 12, n: 1536, k: 384 }, Activation::Gelu, 6);
        check_linear(variant, LinearDims { m: 12, n: 384, k: 1536 }, Activation::None, 7);
    }
}

#[test]
fn erf_approximation_is_within_its_bound() {
    // erf values from tables (Abramowitz & Stegun table 7.1).
    for (x, erf) in
        [(0.0f32, 0.0f32), (0.5, 0.520_499_9), (1.0, 0.842_700_8), (-2.0, -0.995_322_3), (3.0, 0.999_977_9)]
    {
        let err = (erf_approx(x) - erf).abs();
        assert!(err < 5e-7, "erf({x}): error {err}");
    }
}

fn check_layer_norm(d: LayerNormDims, seed: u64) {
    let gpu = gpu();
    let kernels = Kernels::new(&gpu.device, gpu.preferred_matmul());
    // An offset so the mean subtraction matters.
    let x: Vec<f32> = random(d.rows * d.dim, seed, 2.0).into_iter().map(|v| v + 3.0).collect();
    let r = random(d.rows * d.dim, seed + 1, 1.0);
    let g = random(d.dim, seed + 2, 1.0);
    let b = random(d.dim, seed + 3, 0.5);
    let expected = layer_norm_cpu(&x, &r, &g, &b, d);
    let bufs = [&x, &r, &g, &b].map(|v| gpu.upload_f32("in", v));
    let out = gpu.scratch_f32("out", x.len());
    let got = run(&gpu, &out, x.len(), |pass| {
        kernels.layer_norm(pass, [&bufs[0], &bufs[1], &bufs[2], &bufs[3], &out], d)
    });
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "{d:?}: max abs error {err}");
}

#[test]
fn layer_norm_with_residual_matches_reference() {
    check_layer_norm(LayerNormDims { rows: 5, dim: 384, eps: 1e-12 }, 10);
}

// A workgroup of 64 normalises a row 4 values per thread per step: rows shorter than one step
// (most threads idle), MiniLM's 384 (one and a half steps) and one past four whole steps.
#[test]
fn layer_norm_matches_reference_on_rows_shorter_and_longer_than_the_workgroup() {
    for (dim, seed) in [(8, 14), (1028, 18)] {
        check_layer_norm(LayerNormDims { rows: 3, dim, eps: 1e-12 }, seed);
    }
}

#[test]
fn attention_matches_reference_and_ignores_padded_keys() {
    let gpu = gpu();
    let kernels = Kernels::new(&gpu.device, gpu.preferred_matmul());
    let d = AttentionDims { batch: 3, seq_len: 7, heads: 12 };
    let lens = [7u32, 4, 1];
    let width = 3 * d.heads * HEAD_DIM;
    let mut qkv = random(d.batch * d.seq_len * width, 20, 1.0);
    let clean = {
        let mut c = qkv.clone();
        for (b, &len) in lens.iter().enumerate() {
            c[(b * d.seq_len + len as usize) * width..(b + 1) * d.seq_len * width].fill(0.0);
        }
        c
    };
    // Padding rows full of large garbage: any leak through the mask would dominate the output.
    for (b, &len) in lens.iter().enumerate() {
        for v in &mut qkv[(b * d.seq_len + len as usize) * width..(b + 1) * d.seq_len * width] {
            *v = *v * 100.0 + 50.0;
        }
    }
    let expected = attention_cpu(&qkv, &lens, d);
    assert_eq!(expected, attention_cpu(&clean, &lens, d), "reference must not read padding");

    let out_len = d.batch * d.seq_len * d.heads * HEAD_DIM;
    let (qkv_buf, lens_buf, out) =
        (gpu.upload_f32("qkv", &qkv), gpu.upload_u32("lens", &lens), gpu.scratch_f32("out", out_len));
    let got = run(&gpu, &out, out_len, |pass| kernels.attention(pass, [&qkv_buf, &lens_buf, &out], d));
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "max abs error {err}");
    // Padded query rows come out as zeros, real ones do not.
    let hidden = d.heads * HEAD_DIM;
    assert!(got[(2 * d.seq_len + 1) * hidden..].iter().all(|&v| v == 0.0));
    assert!(got[..hidden].iter().any(|&v| v != 0.0));
}

#[test]
fn embeddings_gather_and_layer_norm_match_reference() {
    check_embeddings(64);
}

// MiniLM's width: 96 vec4s, more than the 64 threads of a row's workgroup.
#[test]
fn embeddings_match_reference_at_minilm_width() {
    check_embeddings(384);
}

fn check_embeddings(dim: usize) {
    let gpu = gpu();
    let kernels = Kernels::new(&gpu.device, gpu.preferred_matmul());
    let d = EmbeddingDims { rows: 10, seq_len: 5, dim, vocab: 50, max_positions: 16, eps: 1e-12 };
    let ids: Vec<u32> = vec![101, 7, 3, 49, 102, 101, 0, 0, 0, 0].into_iter().map(|i| i % 50).collect();
    let word = random(d.vocab * d.dim, 30, 1.0);
    let position = random(d.max_positions * d.dim, 31, 1.0);
    let token_type = random(d.dim, 32, 1.0);
    let gamma = random(d.dim, 33, 1.0);
    let beta = random(d.dim, 34, 1.0);
    let host = EmbeddingTables {
        word: word.as_slice(),
        position: &position,
        token_type: &token_type,
        gamma: &gamma,
        beta: &beta,
    };
    let expected = embeddings_cpu(&ids, &host, d);
    let up = |v: &[f32]| gpu.upload_f32("table", v);
    let (w, p, t, g, b) = (up(&word), up(&position), up(&token_type), up(&gamma), up(&beta));
    let tables = EmbeddingTables { word: &w, position: &p, token_type: &t, gamma: &g, beta: &b };
    let ids_buf = gpu.upload_u32("ids", &ids);
    let out = gpu.scratch_f32("out", d.rows * d.dim);
    let got = run(&gpu, &out, d.rows * d.dim, |pass| kernels.embeddings(pass, &ids_buf, &tables, &out, d));
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "{d:?}: max abs error {err}");
}

#[test]
fn pooling_averages_real_tokens_only_and_normalises() {
    let gpu = gpu();
    let kernels = Kernels::new(&gpu.device, gpu.preferred_matmul());
    let d = PoolDims { batch: 3, seq_len: 6, dim: 384 };
    let lens = [6u32, 3, 1];
    let mut x = random(d.batch * d.seq_len * d.dim, 40, 1.0);
    // Garbage in padding rows must not reach the mean.
    for (b, &len) in lens.iter().enumerate() {
        x[(b * d.seq_len + len as usize) * d.dim..(b + 1) * d.seq_len * d.dim].fill(1e3);
    }
    let expected = pool_normalize_cpu(&x, &lens, d);
    // The single-token sequence's embedding is its one row, normalised.
    let row = &x[2 * d.seq_len * d.dim..][..d.dim];
    let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
    let manual: Vec<f32> = row.iter().map(|v| v / norm).collect();
    assert!(max_abs_diff(&expected[2 * d.dim..], &manual) < 1e-6);

    let (x_buf, lens_buf, out) =
        (gpu.upload_f32("x", &x), gpu.upload_u32("lens", &lens), gpu.scratch_f32("out", d.batch * d.dim));
    let got =
        run(&gpu, &out, d.batch * d.dim, |pass| kernels.pool_normalize(pass, [&x_buf, &lens_buf, &out], d));
    let err = max_abs_diff(&got, &expected);
    assert!(err <= TOLERANCE, "max abs error {err}");
    for v in got.chunks_exact(d.dim) {
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5, "norm {n}");
    }
}

// A workgroup per sequence with its threads across the features: a width that leaves threads
// without a feature (8) and one past four whole steps of 64 vec4s (1028), with padded
// sequences (lens below seq_len) in the batch, including one of length 0, read as 1.
#[test]
fn pooling_matches_reference_on_widths_around_the_workgroup_with_padding() {
    let gpu = gpu();
    let kernels = Kernels::new(&gpu.device, gpu.preferred_matmul());
    for (dim, seed) in [(8, 41), (1028, 42)] {
        let d = PoolDims { batch: 4, seq_len: 9, dim };
        let lens = [9u32, 2, 0, 5];
        let mut x = random(d.batch * d.seq_len * d.dim, seed, 1.0);
        for (b, &len) in lens.iter().enumerate() {
            x[(b * d.seq_len + len.max(1) as usize) * d.dim..(b + 1) * d.seq_len * d.dim].fill(-1e3);
        }
        let expected = pool_normalize_cpu(&x, &lens, d);
        let (x_buf, lens_buf, out) =
            (gpu.upload_f32("x", &x), gpu.upload_u32("lens", &lens), gpu.scratch_f32("out", d.batch * d.dim));
        let got = run(&gpu, &out, d.batch * d.dim, |pass| {
            kernels.pool_normalize(pass, [&x_buf, &lens_buf, &out], d)
        });
        let err = max_abs_diff(&got, &expected);
        assert!(err <= TOLERANCE, "{d:?}: max abs error {err}");
    }
}
