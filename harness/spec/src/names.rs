//! Names that become file names: board ids, model names and variants are joined into paths under
//! `--out` (`outputs/<board>__<model>__<variant>.f32`), so each must be one harmless path component.

use std::fmt;

/// The longest name accepted, in bytes: three of them joined must stay under the 255-byte
/// file-name limit of common file systems.
pub const MAX_NAME_BYTES: usize = 80;

/// Why a name cannot be used as a path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    Empty,
    TooLong(usize),
    /// `.` or `..`, which name a folder rather than a file.
    DotName,
    Separator(char),
    Control(char),
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => write!(f, "it is empty"),
            NameProblem::TooLong(n) => write!(f, "it is {n} bytes long (at most {MAX_NAME_BYTES})"),
            NameProblem::DotName => write!(f, "`.` and `..` name folders"),
            NameProblem::Separator(c) => write!(f, "it contains the path separator `{c}`"),
            NameProblem::Control(c) => {
                write!(
                    f,
                    "it contains the control character {}",
                    c.escape_unicode()
                )
            }
        }
    }
}

/// The one rule for names that become path components.
pub fn check_path_component(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameProblem::TooLong(name.len()));
    }
    if name == "." || name == ".." {
        return Err(NameProblem::DotName);
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return Err(NameProblem::Separator(c));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(NameProblem::Control(c));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "rpi4-01", "cwru_cnn", "int8_qdq", "fp32", "board.v2", "ü-board",
        ] {
            assert_eq!(check_path_component(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_what_escapes_or_breaks_a_path() {
        let cases = [
            ("", NameProblem::Empty),
            ("..", NameProblem::DotName),
            (".", NameProblem::DotName),
            ("../../../../tmp/x", NameProblem::Separator('/')),
            ("a\\b", NameProblem::Separator('\\')),
            ("a\0b", NameProblem::Control('\0')),
            ("a\x1b[31mred", NameProblem::Control('\x1b')),
            ("line\nbreak", NameProblem::Control('\n')),
        ];
        for (name, problem) in cases {
            assert_eq!(check_path_component(name), Err(problem), "{name:?}");
        }
        assert_eq!(
            check_path_component(&"x".repeat(81)),
            Err(NameProblem::TooLong(81))
        );
    }
}
