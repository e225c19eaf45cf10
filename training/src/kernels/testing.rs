//! What the kernels' tests share: deterministic test values and inner products in `f64`.

/// `n` values in [-1, 1), spread without pattern, different for each `seed`.
pub fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5) - 1.0)
        .collect()
}

/// `sum_i a[i] * b[i]` in `f64` (for adjoint checks: `<dx, v> = <dy, op(v)>`).
pub fn inner<T: Copy + Into<f64>>(a: &[f32], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * (*y).into()).sum()
}
