//! The windows a dataset yields, and the arithmetic that places them in a recording.

use std::ops::Range;
use std::path::PathBuf;

use crate::spec::{Layout, Selection};

/// Every window of a dataset, back to back, ready to be sent to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    /// Values per window: rows × features.
    pub window_len: usize,
    /// Rows (time steps) per window.
    pub rows: usize,
    /// Feature columns per window.
    pub features: usize,
    /// How each window is flattened (see [`Layout`]).
    pub layout: Layout,
    /// All windows back to back, `len() * window_len` values.
    pub data: Vec<f32>,
    /// Class index of each window.
    pub labels: Vec<u32>,
    /// Where each window was cut from.
    pub origins: Vec<WindowOrigin>,
    /// Timestamp (seconds) of each window's last row, when the dataset names a timestamp column.
    pub timestamps_s: Option<Vec<f64>>,
    /// Regression datasets: each window's target ([`crate::TargetSpec`]), cast through f32 as the
    /// features are.
    pub targets: Option<Vec<f64>>,
    /// Regression datasets: the target column at each window's last row, which is what a
    /// persistence forecast ("it stays as it is") predicts.
    pub last_values: Option<Vec<f64>>,
    /// Regression datasets: windows dropped because their target lies past the end of their file.
    pub dropped_past_end: usize,
    /// SHA-256 (lowercase hex) over the bytes of all recordings concatenated in order: the dataset
    /// fingerprint for provenance.
    pub sha256: String,
    pub per_recording: Vec<RecordingInfo>,
    /// Set on a [`Windows::stratified_subset`]: how many windows the full selection had.
    pub subset_of: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOrigin {
    /// Index into [`Windows::per_recording`] (and the spec's recordings).
    pub recording: usize,
    /// 1-based line number, in the file, of the window's first row, as an editor shows it and as
    /// errors name it. With a header and no multi-line quoted fields, pandas' 0-based row `i` is
    /// line `i + 2`.
    pub first_row: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    /// Data rows in the file (header excluded), before selection.
    pub rows: usize,
    /// Index (0-based, among data rows) of the first selected row.
    pub first_selected: usize,
    pub windows: usize,
    /// SHA-256 (lowercase hex) of the file's bytes.
    pub sha256: String,
}

impl Windows {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The flat values of window `i`. Panics if `i >= len()`.
    pub fn window(&self, i: usize) -> &[f32] {
        self.batch(i..i + 1)
    }

    /// The windows in `range`, back to back, as one batch tensor. Panics if out of bounds.
    pub fn batch(&self, range: Range<usize>) -> &[f32] {
        &self.data[range.start * self.window_len..range.end * self.window_len]
    }

    /// Each window with its label, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[f32], u32)> + '_ {
        self.data
            .chunks_exact(self.window_len)
            .zip(self.labels.iter().copied())
    }

    /// About `n` windows keeping each class's share of the whole (largest remainder, at least one
    /// per class present when `n` allows), picked evenly spaced through each class and kept in
    /// their original order: spaced picks span each recording's whole held-out stretch, where a
    /// prefix would see only its start. All windows when `n >= len()`.
    pub fn stratified_subset(&self, n: usize) -> Windows {
        let total = self.len();
        if n >= total {
            return self.clone();
        }
        let mut members: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
        for (i, &label) in self.labels.iter().enumerate() {
            members.entry(label).or_default().push(i);
        }
        let mut quotas: Vec<(u32, usize, f64)> = members
            .iter()
            .map(|(&label, m)| {
                let exact = n as f64 * m.len() as f64 / total as f64;
                (label, exact.floor() as usize, exact.fract())
            })
            .collect();
        if n >= quotas.len() {
            for q in quotas.iter_mut().filter(|q| q.1 == 0) {
                (q.1, q.2) = (1, -1.0);
            }
        }
        let mut left = n.saturating_sub(quotas.iter().map(|q| q.1).sum());
        quotas.sort_by(|a, b| b.2.total_cmp(&a.2));
        for q in quotas.iter_mut() {
            if left == 0 {
                break;
            }
            if q.1 < members[&q.0].len() {
                q.1 += 1;
                left -= 1;
            }
        }
        let mut picked: Vec<usize> = quotas
            .iter()
            .flat_map(|&(label, take, _)| {
                let m = &members[&label];
                let take = take.min(m.len());
                (0..take).map(move |j| m[((2 * j + 1) * m.len()) / (2 * take)])
            })
            .collect();
        picked.sort_unstable();
        let pick = |all: &Option<Vec<f64>>| {
            all.as_ref()
                .map(|all| picked.iter().map(|&i| all[i]).collect())
        };
        let mut subset = Windows {
            data: Vec::with_capacity(picked.len() * self.window_len),
            labels: Vec::with_capacity(picked.len()),
            origins: Vec::with_capacity(picked.len()),
            timestamps_s: pick(&self.timestamps_s),
            targets: pick(&self.targets),
            last_values: pick(&self.last_values),
            subset_of: Some(total),
            per_recording: self.per_recording.clone(),
            sha256: self.sha256.clone(),
            ..*self
        };
        for &i in &picked {
            subset.data.extend_from_slice(self.window(i));
            subset.labels.push(self.labels[i]);
            subset.origins.push(self.origins[i]);
        }
        subset
    }

    /// The tensor shape of one window in its layout: `[rows, features]` or `[features, rows]`.
    pub fn window_shape(&self) -> [usize; 2] {
        match self.layout {
            Layout::RowMajor => [self.rows, self.features],
            Layout::ChannelsFirst => [self.features, self.rows],
        }
    }
}

impl Selection {
    /// Index of the first selected row of a recording of `len` rows.
    ///
    /// `TailFraction(f)` keeps rows from `floor(len * (1 - f))`, evaluated in f64 exactly like the
    /// reference pipeline's Python `int(len * 0.7)` for a 30 % tail (`1 - 0.3 == 0.7` in f64). That
    /// inherits binary rounding: for `len = 90` the cut is 62, not 63, as in Python, which is what
    /// reproducing a reference split needs.
    pub fn first_row(&self, len: usize) -> usize {
        match *self {
            Selection::All => 0,
            Selection::TailFraction(fraction) => {
                let cut = (len as f64 * (1.0 - fraction)).floor();
                // Saturating float→int cast keeps a fraction outside [0, 1] inside the recording.
                (cut as usize).min(len)
            }
        }
    }
}

/// How many windows of `rows` rows, `stride` rows apart, fit in `available` rows.
pub fn window_count(available: usize, rows: usize, stride: usize) -> usize {
    assert!(
        rows > 0 && stride > 0,
        "window rows and stride must be positive"
    );
    if available < rows {
        0
    } else {
        (available - rows) / stride + 1
    }
}

/// How many windows of `rows` rows, `stride` rows apart from row `first` on, end before row `end`.
pub(crate) fn window_count_to(end: usize, first: usize, rows: usize, stride: usize) -> usize {
    window_count(end.saturating_sub(first), rows, stride)
}

/// Appends one window, starting at row `start` of a row-major table of `features` columns, in
/// `layout` order.
pub(crate) fn push_window(
    out: &mut Vec<f32>,
    table: &[f32],
    features: usize,
    start: usize,
    rows: usize,
    layout: Layout,
) {
    let rows_slice = &table[start * features..(start + rows) * features];
    match layout {
        Layout::RowMajor => out.extend_from_slice(rows_slice),
        Layout::ChannelsFirst => {
            for column in 0..features {
                out.extend(rows_slice.iter().skip(column).step_by(features));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tail_cut_matches_python_int_of_len_times_point_seven() {
        // Values printed by CPython 3: int(n * 0.7) for n in (60000, 90, 10, 1, 0).
        for (len, python) in [(60000, 42000), (90, 62), (10, 7), (1, 0), (0, 0)] {
            assert_eq!(
                Selection::TailFraction(0.3).first_row(len),
                python,
                "len {len}"
            );
        }
        assert_eq!(Selection::All.first_row(90), 0);
        assert_eq!(Selection::TailFraction(1.0).first_row(90), 0);
        assert_eq!(Selection::TailFraction(2.0).first_row(90), 0);
        assert_eq!(Selection::TailFraction(-1.0).first_row(90), 90);
    }

    /// Window i holds the single value i; `labels` gives each window's class.
    fn numbered(labels: &[u32]) -> Windows {
        Windows {
            window_len: 1,
            rows: 1,
            features: 1,
            layout: Layout::RowMajor,
            data: (0..labels.len()).map(|i| i as f32).collect(),
            labels: labels.to_vec(),
            origins: (0..labels.len())
                .map(|i| WindowOrigin {
                    recording: 0,
                    first_row: i as u64 + 2,
                })
                .collect(),
            timestamps_s: Some((0..labels.len()).map(|i| i as f64).collect()),
            targets: None,
            last_values: None,
            dropped_past_end: 0,
            sha256: "fingerprint".into(),
            per_recording: Vec::new(),
            subset_of: None,
        }
    }

    #[test]
    fn a_stratified_subset_keeps_class_shares_spread_and_order() {
        // 30 windows of class 0, 10 of class 1: a 3:1 share.
        let labels: Vec<u32> = (0..40).map(|i| u32::from(i >= 30)).collect();
        let subset = numbered(&labels).stratified_subset(8);
        assert_eq!(subset.subset_of, Some(40));
        // Six of class 0 and two of class 1, each evenly spaced through its class, in order.
        assert_eq!(subset.data, [2.0, 7.0, 12.0, 17.0, 22.0, 27.0, 32.0, 37.0]);
        assert_eq!(subset.labels, [0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(subset.origins[6].first_row, 34);
        assert_eq!(subset.timestamps_s.as_ref().unwrap()[7], 37.0);
    }

    #[test]
    fn a_rare_class_keeps_one_window_in_a_subset() {
        let labels: Vec<u32> = (0..40).map(|i| u32::from(i == 39)).collect();
        let subset = numbered(&labels).stratified_subset(4);
        assert_eq!(subset.labels, [0, 0, 0, 1]);
        assert_eq!(numbered(&labels).stratified_subset(40).subset_of, None);
    }

    #[test]
    fn layouts_flatten_a_two_column_window() {
        // Row r holds (10 r, 10 r + 1).
        let table: Vec<f32> = (0..5)
            .flat_map(|r| [10.0 * r as f32, 10.0 * r as f32 + 1.0])
            .collect();
        let mut row_major = Vec::new();
        push_window(&mut row_major, &table, 2, 1, 3, Layout::RowMajor);
        assert_eq!(row_major, [10.0, 11.0, 20.0, 21.0, 30.0, 31.0]);
        let mut channels_first = Vec::new();
        push_window(&mut channels_first, &table, 2, 1, 3, Layout::ChannelsFirst);
        assert_eq!(channels_first, [10.0, 20.0, 30.0, 11.0, 21.0, 31.0]);
    }

    proptest! {
        #[test]
        fn windows_tile_the_available_rows(available in 0usize..5000, rows in 1usize..300, stride in 1usize..300) {
            let count = window_count(available, rows, stride);
            if count == 0 {
                prop_assert!(available < rows);
            } else {
                let last_start = (count - 1) * stride;
                prop_assert!(last_start + rows <= available, "last window ends inside");
                prop_assert!(last_start + stride + rows > available, "no room for one more");
            }
        }

        #[test]
        fn tail_keeps_about_the_fraction(len in 0usize..1_000_000, percent in 0u32..=100) {
            let fraction = f64::from(percent) / 100.0;
            let first = Selection::TailFraction(fraction).first_row(len);
            prop_assert!(first <= len);
            let kept = (len - first) as f64;
            prop_assert!((kept - len as f64 * fraction).abs() <= 1.0 + len as f64 * 1e-12);
        }

        #[test]
        fn channels_first_is_the_transpose_of_row_major(
            features in 1usize..6, rows in 1usize..20, extra in 0usize..5, seed in any::<u32>(),
        ) {
            let total = rows + extra;
            let table: Vec<f32> = (0..total * features).map(|i| (i as u32 ^ seed) as f32).collect();
            let start = extra;
            let (mut rm, mut cf) = (Vec::new(), Vec::new());
            push_window(&mut rm, &table, features, start, rows, Layout::RowMajor);
            push_window(&mut cf, &table, features, start, rows, Layout::ChannelsFirst);
            prop_assert_eq!(rm.len(), rows * features);
            for r in 0..rows {
                for c in 0..features {
                    prop_assert_eq!(rm[r * features + c], table[(start + r) * features + c]);
                    prop_assert_eq!(cf[c * rows + r], rm[r * features + c]);
                }
            }
        }
    }
}
