//! Champions head to head: before a run, the current champion's own build joins it, so a
//! `vs_champion` gate judges a ratio measured side by side, under the same machine state, instead
//! of a figure from another run (which on a shared machine can differ by 60 %).

use std::collections::BTreeSet;
use std::sync::Arc;

use gauntlet_results::RuntimeUsed;
use gauntlet_runner::{Plan, PlannedBuild};
use gauntlet_spec::{RuntimeSpec, Threshold};
use gauntlet_store::{Promotion, Store};
use sha2::{Digest, Sha256};

/// Adds, for every model of a scenario with a `vs_champion` gate, the champion build of each board class in
/// the run whose artifact is still where its run found it, with the SHA-256 the promotion
/// ledger recorded. Returns one line per champion saying whether it joined or why not (then the
/// gate uses the stored figures).
pub fn join_champions(plan: &mut Plan, store: &Store) -> Vec<String> {
    let judged = plan
        .scenario
        .gates
        .iter()
        .any(|g| matches!(g.threshold, Threshold::VsChampion { .. }));
    if !judged {
        return Vec::new();
    }
    let classes: BTreeSet<String> = plan.boards.iter().map(gauntlet_gate::board_class).collect();
    let scenario = plan.scenario.name.clone();
    let mut notes = Vec::new();
    for model in &mut plan.models {
        for class in &classes {
            let Ok(Some(p)) = store.champion(&scenario, &model.name, class) else {
                continue;
            };
            let joined = model
                .builds
                .iter()
                .any(|b| b.champion && hex::encode(b.sha256) == p.model_sha256);
            if joined {
                continue;
            }
            let who = format!(
                "champion {} {} (run {}, {class})",
                model.name, p.variant, p.run_id
            );
            match champion_build(store, &p, &format!("champion-{}", p.variant)) {
                Ok(build) => {
                    notes.push(format!(
                        "{who}: joins the run head to head from `{}`",
                        build.artifact.display()
                    ));
                    model.builds.push(build);
                }
                Err(why) => notes.push(format!("{who}: {why}; judging by stored figures")),
            }
        }
    }
    notes
}

/// The champion's own build, found through its run's provenance and checked against the SHA-256
/// the promotion ledger recorded, as build `variant`; `Err` says why it cannot run.
pub fn champion_build(store: &Store, p: &Promotion, variant: &str) -> Result<PlannedBuild, String> {
    let promoted = store
        .run(&p.run_id)
        .ok()
        .and_then(|r| {
            r.results?
                .entries
                .into_iter()
                .find(|e| e.model == p.model && e.variant == p.variant)
        })
        .ok_or_else(|| "its run names no artifact".to_string())?;
    let path = std::path::PathBuf::from(&promoted.provenance.model_path);
    let bytes =
        std::fs::read(&path).map_err(|e| format!("cannot read `{}` ({e})", path.display()))?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    if hex::encode(sha256) != p.model_sha256 {
        return Err(format!(
            "`{}` has changed since it was promoted (SHA-256 differs)",
            path.display()
        ));
    }
    let prebuilt_firmware = path.extension().is_some_and(|x| x == "elf");
    Ok(PlannedBuild {
        model: p.model.clone(),
        variant: variant.to_string(),
        reference: false,
        artifact: path,
        prebuilt_firmware,
        bytes: Arc::new(bytes),
        sha256,
        champion: true,
        runtime: runtime_of(promoted.runtime.as_ref(), prebuilt_firmware),
    })
}

/// The champion runs on the runtime and settings it was promoted with (version 1 results, and
/// firmware, which has its engine built in, name none).
fn runtime_of(used: Option<&RuntimeUsed>, firmware: bool) -> RuntimeSpec {
    match used {
        Some(used) if !firmware => RuntimeSpec {
            name: used.name.clone(),
            threads: used.threads,
            optimization: used.optimization.clone(),
            providers: used.providers.clone(),
        },
        _ => RuntimeSpec::default(),
    }
}
