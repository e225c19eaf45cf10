//! Per-column mean and variance over batches of rows: what AdaBN (Li et al. 2016) sets a batch
//! norm's running statistics to, for the encoder's norms ([`crate::model::Encoder::recalibrated`])
//! and the posture network's ([`crate::posture::classifier::Gnn::recalibrated`]).

use burn::prelude::*;

/// Per column, the mean and the (biased, as batch norm's) variance over every row of the
/// batches `batch(0)`, ..., `batch(count - 1)` (`[rows, columns]` each); `None` for no rows.
/// Two passes (the mean, then the mean squared deviation from it): exact in f32 where a running
/// sum of squares would cancel. Each batch is asked for once per pass, so a caller may hold its
/// batches or recompute them.
pub fn column_moments(
    count: usize,
    batch: impl Fn(usize) -> Tensor<2>,
) -> Option<(Tensor<1>, Tensor<1>)> {
    let mut rows = 0;
    let sum = (0..count)
        .map(|i| {
            let b = batch(i);
            rows += b.dims()[0];
            b.sum_dim(0)
        })
        .reduce(|a, b| a + b)?;
    if rows == 0 {
        return None;
    }
    let mean = sum / rows as f32; // [1, columns]
    let squares = (0..count)
        .map(|i| {
            let deviation = batch(i) - mean.clone();
            (deviation.clone() * deviation).sum_dim(0)
        })
        .reduce(|a, b| a + b)?;
    let columns = mean.dims()[1];
    let variance = squares / rows as f32;
    Some((mean.reshape([columns]), variance.reshape([columns])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_uneven_batches_are_those_of_all_rows() {
        let device = Device::flex();
        let rows = [[1.0, 10.0], [2.0, 10.0], [3.0, 13.0], [6.0, 7.0]];
        let batches: Vec<Tensor<2>> = [&rows[..1], &rows[1..]]
            .into_iter()
            .map(|r| {
                let flat: Vec<f32> = r.iter().flatten().copied().collect();
                Tensor::from_data(TensorData::new(flat, [r.len(), 2]), &device)
            })
            .collect();
        let (mean, variance) = column_moments(2, |i| batches[i].clone()).unwrap();
        let values = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(values(mean), [3.0, 10.0]);
        // (4 + 1 + 0 + 9) / 4 and (0 + 0 + 9 + 9) / 4.
        assert_eq!(values(variance), [3.5, 4.5]);
        assert!(column_moments(0, |i| batches[i].clone()).is_none());
    }
}
