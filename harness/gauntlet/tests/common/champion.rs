//! A store shared by several runs of one CWRU scenario: champions, promotions, gates against them.

use std::path::Path;

use super::*;

const RIG: &str = LOCAL_RIG_WITHOUT_METER;

/// The last 5 % of each CWRU recording (40 windows): enough to tell fp32 from fp16 apart, quick
/// enough for CI.
pub fn scenario(model_file: &str, gates: &str) -> String {
    scenario_of(&format!("scenarios/models/cwru_cnn/{model_file}"), gates)
}

/// As [`scenario`], with the candidate's model at `model` (a path in the repository).
pub fn scenario_of(model: &str, gates: &str) -> String {
    let builds =
        format!(r#"[{{ variant = "candidate", onnx = "{{repo}}/{model}", reference = true }}]"#);
    cwru_scenario(
        "cwru-champion",
        0.05,
        &builds,
        &format!("[run]\nwarmup = 4\nbatch = 8\n\n{gates}"),
    )
}

pub struct Case<'a> {
    pub dir: &'a Path,
    pub db: String,
}

impl Case<'_> {
    pub fn new(dir: &Path) -> Case<'_> {
        Case {
            dir,
            db: dir.join("g.db").display().to_string(),
        }
    }

    pub fn run(&self, name: &str, scenario_text: &str) -> (Option<i32>, serde_json::Value) {
        self.run_on(name, scenario_text, RIG)
    }

    /// Runs `scenario_text` on the rig `rig_text`, both written as files named after `name`.
    pub fn run_on(
        &self,
        name: &str,
        scenario_text: &str,
        rig_text: &str,
    ) -> (Option<i32>, serde_json::Value) {
        let scenario = write(self.dir, &format!("{name}.toml"), scenario_text);
        let rig = write(self.dir, &format!("{name}-rig.toml"), rig_text);
        let out = self.dir.join(name);
        let output = run_scenario(&scenario, &rig, &out, Some(&self.db));
        (output.status.code(), results(&out))
    }

    pub fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--db", &self.db]);
        let output = run(&all);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// `gauntlet promote RUN --model cwru_cnn --variant candidate --by ci --reason REASON`: the
    /// exit code.
    pub fn promote(&self, run_id: &str, reason: &str) -> Option<i32> {
        let args = [
            "promote",
            run_id,
            "--model",
            "cwru_cnn",
            "--variant",
            "candidate",
            "--by",
            "ci",
            "--reason",
            reason,
        ];
        self.cli(&args).0
    }
}
