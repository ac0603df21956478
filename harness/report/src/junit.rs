//! JUnit XML in the strict Ant/JUnitReport schema (Windy Road `JUnit.xsd`) that Jenkins, GitLab and
//! most CI systems read. One `<testsuite>` per model build × board class, one `<testcase>` per gate
//! applied to that build on a board of the class:
//!
//! - PASS → an empty test case;
//! - FAIL → `<failure type="gate-failed">`, the gate's evidence as text;
//! - INCONCLUSIVE → `<skipped message="inconclusive: …"/>`: the gate could not decide (its interval
//!   straddles the threshold, or too few samples), which is neither a pass nor a regression, and CI
//!   systems show skipped cases without failing the job;
//! - an infrastructure error that kept the build from being judged → one extra test case named
//!   `infrastructure` carrying `<error type="infrastructure">`.
//!
//! The suite's `tests`, `failures`, `errors` and `skipped` attributes count exactly these.

use std::fmt::Write as _;

use gauntlet_results::{GateResult, Verdict};

use crate::fmt::xml;
use crate::rows::gate_rows;
use crate::{ReportError, ReportInput, Reporter, fmt};

#[derive(Debug, Clone, Copy, Default)]
pub struct JunitReporter;

/// A model build judged on a board class.
#[derive(PartialEq)]
struct SuiteKey<'a> {
    model: &'a str,
    variant: &'a str,
    board_class: &'a str,
}

impl Reporter for JunitReporter {
    fn render(&self, input: &ReportInput) -> Result<String, ReportError> {
        let r = input.results;
        let mut keys: Vec<SuiteKey> = r
            .verdicts
            .iter()
            .map(|v| SuiteKey {
                model: &v.model,
                variant: &v.variant,
                board_class: &v.board_class,
            })
            .collect();
        // A gate whose build has no verdict still gets reported, so counts always match the gates.
        for g in &r.gates {
            let key = gate_key(g);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let rows = gate_rows(r);
        let timestamp = junit_timestamp(&r.started_at);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
        for (id, key) in keys.iter().enumerate() {
            let gates: Vec<usize> = (0..r.gates.len())
                .filter(|&i| gate_key(&r.gates[i]) == *key)
                .collect();
            let infra = r
                .verdicts
                .iter()
                .find(|v| {
                    v.model == key.model
                        && v.variant == key.variant
                        && v.board_class == key.board_class
                })
                .and_then(|v| v.infra_error.as_deref());
            let count = |verdict| {
                gates
                    .iter()
                    .filter(|&&i| r.gates[i].verdict == verdict)
                    .count()
            };
            let mut hosts: Vec<&str> = gates.iter().map(|&i| r.gates[i].board.as_str()).collect();
            hosts.dedup();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" package=\"gauntlet.{}\" id=\"{id}\" timestamp=\"{timestamp}\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"0\">",
                xml(&format!(
                    "{}:{} on {}",
                    key.model, key.variant, key.board_class
                )),
                xml(&r.run_id),
                xml(if hosts.is_empty() {
                    "localhost".to_string()
                } else {
                    hosts.join(",")
                }
                .as_str()),
                gates.len() + usize::from(infra.is_some()),
                count(Verdict::Fail),
                usize::from(infra.is_some()),
                count(Verdict::Inconclusive),
            );
            out.push_str("    <properties>\n");
            for (name, value) in [
                ("run_id", r.run_id.as_str()),
                ("scenario", r.scenario.name.as_str()),
                ("scenario_sha256", r.scenario.sha256.as_str()),
                ("dataset_sha256", r.dataset.sha256.as_str()),
                ("harness_version", r.harness.version.as_str()),
                (
                    "git_commit",
                    r.harness.git_commit.as_deref().unwrap_or("unknown"),
                ),
            ] {
                let _ = writeln!(
                    out,
                    "      <property name=\"{name}\" value=\"{}\"/>",
                    xml(value)
                );
            }
            // CI dashboards group and filter suites by property: the runtime that produced the
            // figures, as the board reported it.
            if let Some(runtime) = r
                .entries
                .iter()
                .find(|e| e.model == key.model && e.variant == key.variant)
                .and_then(|e| e.runtime.as_ref())
            {
                let _ = writeln!(
                    out,
                    "      <property name=\"runtime\" value=\"{}\"/>",
                    xml(&format!(
                        "{} {}",
                        runtime.name,
                        runtime.version.as_deref().unwrap_or("version unknown")
                    ))
                );
            }
            out.push_str("    </properties>\n");
            let classname = xml(&format!(
                "gauntlet.{}.{}.{}",
                key.board_class, key.model, key.variant
            ));
            for &i in &gates {
                let (g, row) = (&r.gates[i], &rows[i]);
                let name = xml(&format!("{} [{}]", g.gate, g.board));
                let summary = format!(
                    "measured {}, threshold {}",
                    row.measured.plain(),
                    row.threshold
                );
                match g.verdict {
                    Verdict::Pass => {
                        let _ = writeln!(
                            out,
                            "    <testcase name=\"{name}\" classname=\"{classname}\" time=\"0\"/>"
                        );
                    }
                    Verdict::Fail => {
                        let _ = writeln!(
                            out,
                            "    <testcase name=\"{name}\" classname=\"{classname}\" time=\"0\">\n      <failure type=\"gate-failed\" message=\"{}\">{}</failure>\n    </testcase>",
                            xml(&summary),
                            xml(&g.evidence)
                        );
                    }
                    Verdict::Inconclusive => {
                        let _ = writeln!(
                            out,
                            "    <testcase name=\"{name}\" classname=\"{classname}\" time=\"0\">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            xml(&format!("inconclusive: {}; {summary}", g.evidence))
                        );
                    }
                }
            }
            if let Some(reason) = infra {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"infrastructure\" classname=\"{classname}\" time=\"0\">\n      <error type=\"infrastructure\" message=\"{}\">{}</error>\n    </testcase>",
                    xml(reason),
                    xml(reason)
                );
            }
            let _ = writeln!(
                out,
                "    <system-out>verdict {}</system-out>\n    <system-err></system-err>\n  </testsuite>",
                fmt::verdict(
                    r.verdicts
                        .iter()
                        .find(|v| v.model == key.model
                            && v.variant == key.variant
                            && v.board_class == key.board_class)
                        .and_then(|v| v.verdict)
                )
            );
        }
        out.push_str("</testsuites>\n");
        Ok(out)
    }

    fn file_name(&self) -> &str {
        "junit.xml"
    }
}

fn gate_key(g: &GateResult) -> SuiteKey<'_> {
    SuiteKey {
        model: &g.model,
        variant: &g.variant,
        board_class: &g.board_class,
    }
}

/// The schema wants `YYYY-MM-DDTHH:MM:SS` with no zone; results times are UTC RFC 3339.
fn junit_timestamp(rfc3339: &str) -> String {
    let head = rfc3339.get(..19).unwrap_or("");
    let shape_ok = head.len() == 19
        && head.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
    if shape_ok {
        head.to_string()
    } else {
        "1970-01-01T00:00:00".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn timestamps_drop_the_zone() {
        assert_eq!(
            junit_timestamp("2026-11-25T10:15:00Z"),
            "2026-11-25T10:15:00"
        );
        assert_eq!(
            junit_timestamp("2026-11-25T10:15:00.25+00:00"),
            "2026-11-25T10:15:00"
        );
        assert_eq!(junit_timestamp("yesterday"), "1970-01-01T00:00:00");
    }

    fn attr(tag: &str, name: &str) -> usize {
        let start = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        tag[start..].split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn suite_counts_match_the_gates_and_infra_errors() {
        let (results, samples) = fixture::run(20, 0);
        let xml = JunitReporter
            .render(&ReportInput::new(&results, &samples))
            .unwrap();
        let suites: Vec<&str> = xml.split("<testsuite ").skip(1).collect();
        assert_eq!(suites.len(), results.verdicts.len());
        let (mut tests, mut failures, mut skipped, mut errors) = (0, 0, 0, 0);
        for suite in &suites {
            let open = suite.split('>').next().unwrap();
            assert_eq!(
                attr(open, "tests"),
                suite.matches("<testcase ").count(),
                "{suite}"
            );
            assert_eq!(attr(open, "failures"), suite.matches("<failure ").count());
            assert_eq!(attr(open, "skipped"), suite.matches("<skipped ").count());
            assert_eq!(attr(open, "errors"), suite.matches("<error ").count());
            tests += attr(open, "tests");
            failures += attr(open, "failures");
            skipped += attr(open, "skipped");
            errors += attr(open, "errors");
        }
        let gates = &results.gates;
        let infra = results
            .verdicts
            .iter()
            .filter(|v| v.infra_error.is_some())
            .count();
        assert_eq!(tests, gates.len() + infra);
        assert_eq!(
            failures,
            gates.iter().filter(|g| g.verdict == Verdict::Fail).count()
        );
        assert_eq!(
            skipped,
            gates
                .iter()
                .filter(|g| g.verdict == Verdict::Inconclusive)
                .count()
        );
        assert_eq!((errors, infra), (1, 1));
        assert!(
            xml.contains("name=\"&lt;script&gt;alert(1)&lt;/script&gt;:fp32 on raspberry-pi\"")
        );
    }

    #[test]
    fn gates_without_a_verdict_still_get_a_suite() {
        let (mut results, samples) = fixture::run(20, 0);
        results.verdicts.clear();
        let xml = JunitReporter
            .render(&ReportInput::new(&results, &samples))
            .unwrap();
        assert_eq!(xml.matches("<testcase ").count(), results.gates.len());
    }
}
