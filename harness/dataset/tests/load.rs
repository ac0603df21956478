//! Behaviour of `load` on small hand-made recordings: layouts, stride, selection, labels,
//! timestamps, fingerprints, and every error a bad dataset must give.

use std::path::{Path, PathBuf};

use gauntlet_dataset::{
    ColumnRef, CsvFormat, DatasetError, DatasetSpec, LabelSource, Layout, Recording, Selection,
    TargetSpec, Windowing, load,
};
use tempfile::TempDir;

struct Files(TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Ten rows: `t` counts seconds from 2020-03-09 10:34:33, `x` = row, `y` = 100 + row,
/// `label` = row % 2.
fn ten_rows() -> String {
    let mut text = String::from("t,x,y,label\n");
    for row in 0..10 {
        text += &format!(
            "2020-03-09 10:34:{},{row},{},{}\n",
            33 + row,
            100 + row,
            row % 2
        );
    }
    text
}

fn spec(paths: &[&Path], features: &[&str], rows: usize, stride: usize) -> DatasetSpec {
    DatasetSpec {
        name: "toy".into(),
        recordings: (0..)
            .zip(paths)
            .map(|(class, path)| Recording {
                path: path.to_path_buf(),
                class: Some(class),
            })
            .collect(),
        format: CsvFormat {
            delimiter: b',',
            has_header: true,
        },
        features: features
            .iter()
            .map(|&name| ColumnRef::Name(name.into()))
            .collect(),
        window: Windowing { rows, stride },
        layout: Layout::RowMajor,
        labels: LabelSource::PerFile,
        classes: vec!["zero".into(), "one".into()],
        selection: Selection::All,
        timestamp: None,
        target: None,
    }
}

fn load_err(spec: &DatasetSpec) -> DatasetError {
    load(spec).expect_err("load must fail")
}

#[test]
fn row_major_and_channels_first_flatten_two_columns() {
    let files = Files::new();
    let path = files.write("a.csv", &ten_rows());
    let mut spec = spec(&[&path], &["x", "y"], 3, 7);
    let row_major = load(&spec).unwrap();
    assert_eq!(row_major.window(0), [0.0, 100.0, 1.0, 101.0, 2.0, 102.0]);
    assert_eq!(row_major.window(1), [7.0, 107.0, 8.0, 108.0, 9.0, 109.0]);
    assert_eq!(row_major.window_shape(), [3, 2]);

    spec.layout = Layout::ChannelsFirst;
    let channels_first = load(&spec).unwrap();
    assert_eq!(
        channels_first.window(0),
        [0.0, 1.0, 2.0, 100.0, 101.0, 102.0]
    );
    assert_eq!(channels_first.window_shape(), [2, 3]);
}

#[test]
fn stride_places_windows_and_origins_count_file_lines() {
    let files = Files::new();
    let path = files.write("a.csv", &ten_rows());
    let windows = load(&spec(&[&path], &["x"], 4, 3)).unwrap();
    assert_eq!(windows.len(), 3, "starts 0, 3, 6; 9 would end past row 9");
    assert_eq!(
        windows.data,
        [0., 1., 2., 3., 3., 4., 5., 6., 6., 7., 8., 9.]
    );
    let lines: Vec<u64> = windows.origins.iter().map(|o| o.first_row).collect();
    assert_eq!(lines, [2, 5, 8], "data row r is line r + 2");
    assert_eq!(windows.per_recording[0].rows, 10);
    assert_eq!(windows.per_recording[0].windows, 3);
}

#[test]
fn tail_fraction_keeps_the_last_rows() {
    let files = Files::new();
    let path = files.write("a.csv", &ten_rows());
    let mut spec = spec(&[&path], &["x"], 2, 1);
    spec.selection = Selection::TailFraction(0.3);
    let windows = load(&spec).unwrap();
    // Python int(10 * 0.7) == 7: rows 7, 8, 9.
    assert_eq!(windows.per_recording[0].first_selected, 7);
    assert_eq!(windows.data, [7., 8., 8., 9.]);
}

#[test]
fn windows_never_cross_recordings_and_take_per_file_classes() {
    let files = Files::new();
    let a = files.write("a.csv", "x\n1\n2\n3\n");
    let b = files.write("b.csv", "x\n4\n5\n");
    let windows = load(&spec(&[&a, &b], &["x"], 2, 1)).unwrap();
    assert_eq!(windows.data, [1., 2., 2., 3., 4., 5.]);
    assert_eq!(windows.labels, [0, 0, 1]);
    let recordings: Vec<usize> = windows.origins.iter().map(|o| o.recording).collect();
    assert_eq!(recordings, [0, 0, 1]);
    assert_ne!(windows.sha256, windows.per_recording[0].sha256);
}

#[test]
fn label_column_is_read_at_the_last_row_of_each_window() {
    let files = Files::new();
    let path = files.write("a.csv", &ten_rows());
    let mut spec = spec(&[&path], &["x"], 3, 2);
    spec.labels = LabelSource::Column(ColumnRef::Name("label".into()));
    let windows = load(&spec).unwrap();
    // Windows end at rows 2, 4, 6, 8: all even.
    assert_eq!(windows.labels, [0, 0, 0, 0]);
    spec.window.stride = 1;
    let windows = load(&spec).unwrap();
    assert_eq!(windows.labels, [0, 1, 0, 1, 0, 1, 0, 1]);
}

#[test]
fn timestamps_are_those_of_each_windows_last_row() {
    let files = Files::new();
    let path = files.write("a.csv", &ten_rows());
    let mut spec = spec(&[&path], &["x"], 4, 5);
    spec.timestamp = Some(ColumnRef::Name("t".into()));
    let windows = load(&spec).unwrap();
    // `date -u -d '2020-03-09 10:34:36' +%s` prints 1583750076.
    assert_eq!(
        windows.timestamps_s,
        Some(vec![1_583_750_076.0, 1_583_750_081.0])
    );
    spec.timestamp = None;
    assert_eq!(load(&spec).unwrap().timestamps_s, None);
}

#[test]
fn headerless_files_take_columns_by_index_and_other_delimiters() {
    let files = Files::new();
    let path = files.write("a.csv", "1;10\r\n2;20\r\n3;30\r\n");
    let mut spec = spec(&[&path], &[], 2, 1);
    spec.format = CsvFormat {
        delimiter: b';',
        has_header: false,
    };
    spec.features = vec![ColumnRef::Index(1), ColumnRef::Index(0)];
    let windows = load(&spec).unwrap();
    assert_eq!(windows.data, [10., 1., 20., 2., 20., 2., 30., 3.]);
    let lines: Vec<u64> = windows.origins.iter().map(|o| o.first_row).collect();
    assert_eq!(lines, [1, 2]);
}

#[test]
fn fingerprint_is_the_sha256_of_the_file_bytes() {
    let files = Files::new();
    let path = files.write("a.csv", "a,b\n1,2\n");
    let windows = load(&spec(&[&path], &["b"], 1, 1)).unwrap();
    // `printf 'a,b\n1,2\n' | sha256sum`
    let expected = "492d5ea496056f1a6a6592241032fab764c321596317930b4fa0e1e8bc3b7470";
    assert_eq!(windows.sha256, expected);
    assert_eq!(windows.per_recording[0].sha256, expected);
}

#[test]
fn a_missing_file_is_named() {
    let files = Files::new();
    let path = files.0.path().join("absent.csv");
    let err = load_err(&spec(&[&path], &["x"], 1, 1));
    assert!(matches!(err, DatasetError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("read `{}`: ", path.display())),
        "{err}"
    );
}

#[test]
fn a_column_not_in_the_header_suggests_the_closest() {
    let files = Files::new();
    let path = files.write("a.csv", "Pressure,Current\n1,2\n");
    let err = load_err(&spec(&[&path], &["Presure"], 1, 1));
    assert_eq!(
        err.to_string(),
        format!(
            "find column `Presure` in `{}`: not in the header; did you mean `Pressure`?",
            path.display()
        )
    );
}

#[test]
fn a_window_longer_than_the_selected_rows_says_how_many_there_are() {
    let files = Files::new();
    let path = files.write("a.csv", &ten_rows());
    let mut spec = spec(&[&path], &["x"], 4, 1);
    spec.selection = Selection::TailFraction(0.3);
    let err = load_err(&spec);
    assert_eq!(
        err.to_string(),
        format!(
            "cut a window of 4 rows from `{}`: only 3 rows are selected",
            path.display()
        )
    );
}

#[test]
fn a_non_numeric_cell_names_file_line_and_column() {
    let files = Files::new();
    let path = files.write("a.csv", "x,Pressure\n1,2\n3,abc\n");
    let err = load_err(&spec(&[&path], &["x", "Pressure"], 1, 1));
    assert_eq!(
        err.to_string(),
        format!(
            "read `{}` line 3 column `Pressure`: `abc` is not a finite number",
            path.display()
        )
    );
    let path = files.write("b.csv", "x\r\n1\r\n\"\"\r\n");
    let err = load_err(&spec(&[&path], &["x"], 1, 1));
    assert!(
        err.to_string().contains("line 3 column `x`: `` is not"),
        "{err}"
    );
}

#[test]
fn labels_out_of_range_fail() {
    let files = Files::new();
    for (cell, shown) in [("2", "2"), ("-1", "-1"), ("0.5", "0.5")] {
        let path = files.write("a.csv", &format!("x,label\n1,0\n2,{cell}\n"));
        let mut spec = spec(&[&path], &["x"], 1, 1);
        spec.labels = LabelSource::Column(ColumnRef::Name("label".into()));
        assert_eq!(
            load_err(&spec).to_string(),
            format!(
                "read label of `{}` line 3 column `label`: {shown} is not a class index (an integer from 0 to 1)",
                path.display()
            )
        );
    }

    let path = files.write("a.csv", "x\n1\n");
    let mut spec = spec(&[&path], &["x"], 1, 1);
    spec.recordings[0].class = Some(2);
    let err = load_err(&spec);
    assert!(matches!(err, DatasetError::FileClass { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("class 2 is not below the 2 classes"),
        "{err}"
    );
    spec.recordings[0].class = None;
    assert!(load_err(&spec).to_string().contains("names no class"));
}

#[test]
fn a_bad_timestamp_names_its_cell() {
    let files = Files::new();
    let path = files.write("a.csv", "t,x\n2020-03-09 10:34:33,1\n09/03/2020,2\n");
    let mut spec = spec(&[&path], &["x"], 1, 1);
    spec.timestamp = Some(ColumnRef::Name("t".into()));
    let err = load_err(&spec);
    assert!(
        err.to_string().starts_with(&format!(
            "read `{}` line 3 column `t`: `09/03/2020` is not a timestamp",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn a_ragged_row_names_file_and_line() {
    let files = Files::new();
    let path = files.write("a.csv", "x,y\r\n1,2\r\n3\r\n");
    let err = load_err(&spec(&[&path], &["x"], 1, 1));
    assert_eq!(
        err.to_string(),
        format!(
            "read `{}` line 3: found 1 fields where the first record has 2",
            path.display()
        )
    );
}

#[test]
fn an_empty_or_degenerate_dataset_fails() {
    let err = load_err(&spec(&[], &["x"], 1, 1));
    assert_eq!(err.to_string(), "load dataset `toy`: it yields no windows");

    let files = Files::new();
    let path = files.write("a.csv", "x\n1\n");
    let mut zero_stride = spec(&[&path], &["x"], 1, 0);
    assert!(matches!(
        load_err(&zero_stride),
        DatasetError::InvalidSpec { .. }
    ));
    zero_stride.window.stride = 1;
    zero_stride.features.clear();
    assert!(matches!(
        load_err(&zero_stride),
        DatasetError::InvalidSpec { .. }
    ));

    let empty_file = files.write("empty.csv", "");
    let err = load_err(&spec(&[&empty_file], &["x"], 1, 1));
    assert!(err.to_string().contains("the header is empty"), "{err}");
    let header_only = files.write("header.csv", "x\n");
    let err = load_err(&spec(&[&header_only], &["x"], 1, 1));
    assert!(
        err.to_string().contains("only 0 rows are selected"),
        "{err}"
    );
}

#[test]
fn regression_targets_lie_horizon_rows_ahead_and_windows_past_the_end_are_dropped() {
    let files = Files::new();
    let a = files.write("a.csv", &ten_rows());
    let b = files.write("b.csv", "t,x,y,label\n0,0,5,0\n1,1,6,0\n2,2,7,0\n");
    let mut spec = spec(&[&a, &b], &["x"], 3, 1);
    spec.labels = LabelSource::None;
    spec.classes = Vec::new();
    spec.target = Some(TargetSpec {
        column: ColumnRef::Name("y".into()),
        horizon: 2,
    });
    let windows = load(&spec).unwrap();
    // a.csv: windows end at rows 2..=9, targets need row + 2 ≤ 9, so rows 2..=7 stay (6); the
    // one window of b.csv (ending at row 2) needs row 4, which does not exist.
    assert_eq!(windows.len(), 6);
    assert_eq!(windows.dropped_past_end, 2 + 1);
    assert_eq!(
        windows.targets,
        Some(vec![104.0, 105.0, 106.0, 107.0, 108.0, 109.0])
    );
    assert_eq!(
        windows.last_values,
        Some(vec![102.0, 103.0, 104.0, 105.0, 106.0, 107.0])
    );
    assert_eq!(windows.per_recording[1].windows, 0);
    assert!(windows.labels.iter().all(|&l| l == 0));
    let subset = windows.stratified_subset(2);
    assert_eq!(subset.targets.as_ref().unwrap().len(), 2);
    assert_eq!(subset.last_values.as_ref().unwrap().len(), 2);

    spec.target.as_mut().unwrap().horizon = 0;
    let soft_sensor = load(&spec).unwrap();
    assert_eq!(soft_sensor.dropped_past_end, 0);
    assert_eq!(soft_sensor.targets, soft_sensor.last_values);
}

#[test]
fn a_horizon_past_every_file_names_the_longest_file() {
    let files = Files::new();
    let a = files.write("a.csv", &ten_rows());
    let mut spec = spec(&[&a], &["x"], 3, 1);
    spec.labels = LabelSource::None;
    spec.classes = Vec::new();
    spec.target = Some(TargetSpec {
        column: ColumnRef::Name("y".into()),
        horizon: 8,
    });
    let err = load_err(&spec);
    assert_eq!(
        err.to_string(),
        format!(
            "cut regression targets: `target.horizon` = 8 rows lies past the end of every file (the longest, `{}`, has 10 rows; a window needs 3 plus the horizon)",
            a.display()
        )
    );
}

#[test]
fn a_non_numeric_target_names_file_line_and_column() {
    let files = Files::new();
    let a = files.write("a.csv", "x,y\n1,2\n2,warm\n3,4\n");
    let mut spec = spec(&[&a], &["x"], 1, 1);
    spec.labels = LabelSource::None;
    spec.classes = Vec::new();
    spec.target = Some(TargetSpec {
        column: ColumnRef::Name("y".into()),
        horizon: 1,
    });
    let err = load_err(&spec);
    assert_eq!(
        err.to_string(),
        format!(
            "read `{}` line 3 column `y`: `warm` is not a finite number",
            a.display()
        )
    );
}
