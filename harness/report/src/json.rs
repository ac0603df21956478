//! `results.json`, pretty-printed: the versioned record itself, unchanged.

use crate::{ReportError, ReportInput, Reporter};

#[derive(Debug, Clone, Copy, Default)]
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn render(&self, input: &ReportInput) -> Result<String, ReportError> {
        let mut s = serde_json::to_string_pretty(input.results)?;
        s.push('\n');
        Ok(s)
    }

    fn file_name(&self) -> &str {
        "results.json"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn round_trips_the_results() {
        let (results, samples) = fixture::run(30, 0);
        let text = JsonReporter
            .render(&ReportInput::new(&results, &samples))
            .unwrap();
        let back: gauntlet_results::Results = serde_json::from_str(&text).unwrap();
        assert!(
            back == results,
            "results.json does not parse back to the same results"
        );
        assert!(text.contains("\n  \"schema_version\": 2,"));
    }
}
