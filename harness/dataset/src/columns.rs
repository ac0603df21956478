//! Resolving [`ColumnRef`]s against a recording's header.

use std::path::Path;

use crate::error::DatasetError;
use crate::spec::ColumnRef;

/// A column found in the header: its position and the name errors call it by.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub index: usize,
    pub name: String,
}

/// Finds `column` among `header` (the header's names, or `None` when the file has no header) in a
/// file whose records have `width` fields.
pub(crate) fn resolve(
    column: &ColumnRef,
    header: Option<&[String]>,
    width: usize,
    path: &Path,
) -> Result<Column, DatasetError> {
    let missing = |hint: String| DatasetError::MissingColumn {
        path: path.to_path_buf(),
        column: match column {
            ColumnRef::Name(name) => name.clone(),
            ColumnRef::Index(index) => format!("#{index}"),
        },
        hint,
    };
    match (column, header) {
        (ColumnRef::Index(index), _) if *index >= width => Err(missing(format!(
            "records have {width} fields (columns count from 0)"
        ))),
        (ColumnRef::Index(index), header) => Ok(Column {
            index: *index,
            name: header.map_or_else(|| format!("#{index}"), |names| names[*index].clone()),
        }),
        (ColumnRef::Name(_), None) => Err(missing(
            "the file has no header, so columns can only be named by index".into(),
        )),
        (ColumnRef::Name(name), Some(names)) => match names.iter().position(|n| n == name) {
            Some(index) => Ok(Column {
                index,
                name: name.clone(),
            }),
            None => Err(missing(suggest(name, names))),
        },
    }
}

fn suggest(name: &str, names: &[String]) -> String {
    let wanted = name.to_lowercase();
    let closest = names
        .iter()
        .min_by_key(|candidate| edit_distance(&wanted, &candidate.to_lowercase()));
    match closest {
        Some(closest) => format!("not in the header; did you mean `{closest}`?"),
        None => "the header is empty".into(),
    }
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<String> {
        ["datetime", "Pressure", "Current", "Volume Flow RateRMS"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn names_and_indices_resolve() {
        let names = header();
        let by_name = resolve(
            &ColumnRef::Name("Current".into()),
            Some(&names),
            4,
            Path::new("f.csv"),
        )
        .unwrap();
        assert_eq!((by_name.index, by_name.name.as_str()), (2, "Current"));
        let by_index = resolve(&ColumnRef::Index(1), Some(&names), 4, Path::new("f.csv")).unwrap();
        assert_eq!((by_index.index, by_index.name.as_str()), (1, "Pressure"));
        let headerless = resolve(&ColumnRef::Index(3), None, 4, Path::new("f.csv")).unwrap();
        assert_eq!(headerless.name, "#3");
    }

    #[test]
    fn a_misspelt_name_suggests_the_closest_header() {
        let names = header();
        let err = resolve(
            &ColumnRef::Name("presure".into()),
            Some(&names),
            4,
            Path::new("v/1.csv"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "find column `presure` in `v/1.csv`: not in the header; did you mean `Pressure`?"
        );
    }

    #[test]
    fn out_of_range_index_and_names_without_header_fail() {
        let err = resolve(&ColumnRef::Index(4), None, 4, Path::new("a.csv")).unwrap_err();
        assert!(
            err.to_string()
                .contains("column `#4` in `a.csv`: records have 4 fields"),
            "{err}"
        );
        let err = resolve(&ColumnRef::Name("x".into()), None, 4, Path::new("a.csv")).unwrap_err();
        assert!(err.to_string().contains("no header"), "{err}");
    }

    #[test]
    fn edit_distance_counts_single_char_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
