//! One pressure frame: a row-major grid of sensor readings.

/// A pressure frame as the mat delivers it: `height` rows of `width` cells, row-major (row 0
/// at the head end of the bed when the mat lies as the models expect: [`crate::orientation`]). Readings are unsigned 16-bit (PmatData is 12-bit), which is also
/// what `pmatsrc` pushes as GRAY16_LE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    width: usize,
    height: usize,
    data: Vec<u16>,
}

impl Frame {
    /// A frame from row-major readings; `None` when the data does not fill `width x height`.
    pub fn new(width: usize, height: usize, data: Vec<u16>) -> Option<Self> {
        (width > 0 && height > 0 && width.checked_mul(height) == Some(data.len())).then_some(Self {
            width,
            height,
            data,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    /// Row-major readings.
    pub fn data(&self) -> &[u16] {
        &self.data
    }

    pub fn into_data(self) -> Vec<u16> {
        self.data
    }

    /// Reading at column `x`, row `y`.
    pub fn get(&self, x: usize, y: usize) -> Option<u16> {
        (x < self.width && y < self.height).then(|| self.data[y * self.width + x])
    }

    pub fn row(&self, y: usize) -> &[u16] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    /// Sum of all readings: a frame's total load, in sensor units.
    pub fn total(&self) -> u64 {
        self.data.iter().map(|&v| u64::from(v)).sum()
    }
}

/// A row-major `width`-wide frame mirrored left to right in place.
pub fn mirror_rows<T>(values: &mut [T], width: usize) {
    for row in values.chunks_exact_mut(width.max(1)) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirroring_a_2x3_frame() {
        let mut v = [1, 2, 3, 4, 5, 6];
        mirror_rows(&mut v, 2);
        assert_eq!(v, [2, 1, 4, 3, 6, 5]);
    }

    #[test]
    fn new_checks_geometry() {
        assert!(Frame::new(2, 3, vec![0; 6]).is_some());
        assert!(Frame::new(2, 3, vec![0; 5]).is_none());
        assert!(Frame::new(0, 3, vec![]).is_none());
        assert!(Frame::new(usize::MAX, 2, vec![]).is_none());
    }

    #[test]
    fn accessors() {
        let f = Frame::new(2, 2, vec![1, 2, 3, 4]).unwrap();
        assert_eq!(f.get(1, 0), Some(2));
        assert_eq!(f.get(0, 1), Some(3));
        assert_eq!(f.get(2, 0), None);
        assert_eq!(f.row(1), &[3, 4]);
        assert_eq!(f.total(), 10);
    }
}
