// Shared by the linear kernels (prepended at pipeline build time; WGSL has no #include).
// WGSL has no erf: Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7, far below f32 matmul noise.
fn erf_approx(x: f32) -> f32 {
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-ax * ax);
    return select(y, -y, x < 0.0);
}

// BERT's "gelu" is the exact erf form, not the tanh approximation.
fn gelu4(v: vec4<f32>) -> vec4<f32> {
    return 0.5 * v * (1.0 + vec4<f32>(erf_approx(v.x * 0.70710678118), erf_approx(v.y * 0.70710678118),
                                      erf_approx(v.z * 0.70710678118), erf_approx(v.w * 0.70710678118)));
}

struct LinearParams {
    m: u32,
    n: u32,
    k: u32,
    // 1: apply GELU after the bias.
    gelu: u32,
}

fn activate(v: vec4<f32>, gelu: u32) -> vec4<f32> {
    if (gelu == 1u) {
        return gelu4(v);
    }
    return v;
}
