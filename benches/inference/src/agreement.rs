//! Checks that a baseline (candle, or the gateway's CPU reference) computes what the wgpu
//! path computes: a faster or slower number for a different function would be worthless.

use crate::report::Agreement;

/// The bar the gateway's own tests hold the shaders to against reference embeddings.
pub(crate) const MIN_COSINE: f64 = 0.9999;

/// Cosine similarity of two vectors; 0 when either is all zeros or their lengths differ.
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}

/// Every text's two vectors must point the same way (cosine ≥ [`MIN_COSINE`]); `baseline`
/// names where `theirs` came from.
pub(crate) fn embeddings(baseline: &str, ours: &[Vec<f32>], theirs: &[Vec<f32>]) -> Agreement {
    let what = format!("embeddings ({baseline} vs wgpu)");
    if ours.len() != theirs.len() || ours.is_empty() {
        let detail = format!("{} vs {} vectors", ours.len(), theirs.len());
        return Agreement { what, passed: false, detail };
    }
    let min = ours.iter().zip(theirs).map(|(a, b)| cosine(a, b)).fold(f64::INFINITY, f64::min);
    Agreement {
        what,
        passed: min >= MIN_COSINE,
        detail: format!("min cosine {min:.6} over {} texts, need >= {MIN_COSINE}", ours.len()),
    }
}

/// The first `first` greedy tokens must be the same ids. Later ones may drift: candle
/// quantises activations to Q8 for its Q4_1 matmuls, the shaders keep them f32, so a near
/// tie between two logits can break either way once the texts are long.
pub(crate) fn greedy_tokens(baseline: &str, ours: &[u32], theirs: &[u32], first: usize) -> Agreement {
    let what = format!("first {first} greedy tokens ({baseline} vs wgpu)");
    let n = first.min(ours.len()).min(theirs.len());
    if n < first {
        let detail = format!("only {} and {} tokens generated", ours.len(), theirs.len());
        return Agreement { what, passed: false, detail };
    }
    match (0..n).find(|&i| ours[i] != theirs[i]) {
        None => {
            let same = ours.iter().zip(theirs).take_while(|(a, b)| a == b).count();
            let detail = format!(
                "equal; {same} of {} equal before the first difference",
                ours.len().min(theirs.len())
            );
            Agreement { what, passed: true, detail }
        }
        Some(i) => {
            let detail = format!("differ at token {i}: wgpu {} vs {baseline} {}", ours[i], theirs[i]);
            Agreement { what, passed: false, detail }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_and_mismatched_vectors() {
        assert_eq!(cosine(&[3.0, 4.0], &[6.0, 8.0]), 1.0);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 3.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn embeddings_pass_only_when_every_text_agrees() {
        let ours = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let same = embeddings("candle", &ours, &ours.clone());
        assert!(same.passed);
        assert_eq!(same.what, "embeddings (candle vs wgpu)");
        assert_eq!(same.detail, "min cosine 1.000000 over 2 texts, need >= 0.9999");
        let off = embeddings("candle", &ours, &[vec![1.0, 0.0], vec![0.1, 1.0]]);
        assert!(!off.passed);
        assert_eq!(off.detail, "min cosine 0.995037 over 2 texts, need >= 0.9999");
        assert!(!embeddings("candle", &ours, &ours[..1]).passed);
    }

    #[test]
    fn greedy_tokens_name_the_first_difference() {
        let ok = greedy_tokens("candle", &[1, 2, 3, 4], &[1, 2, 3, 9], 3);
        assert!(ok.passed);
        assert_eq!(ok.detail, "equal; 3 of 4 equal before the first difference");
        let bad = greedy_tokens("cpu", &[1, 2, 3], &[1, 7, 3], 3);
        assert!(!bad.passed);
        assert_eq!(bad.detail, "differ at token 1: wgpu 2 vs cpu 7");
        assert!(!greedy_tokens("candle", &[1], &[1], 3).passed);
    }
}
