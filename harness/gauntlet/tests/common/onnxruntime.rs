//! onnxruntime's own batch-1 scores on this machine (tests/ort_batch1.py, through its Python
//! wheel): the oracle for the agent's onnxruntime scores wherever this CPU's int8 kernels give
//! other scores than the reference pipeline's machine did.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::repo;

/// Every variant's batch-1 scores for `model`, as little-endian f32 bytes, run on the windows of
/// `scenarios/models/<inputs_of>/testdata/input.f32`.
pub fn local_batch1_scores(model: &str, inputs_of: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let models = repo().join("scenarios/models");
    let status = std::process::Command::new("python3")
        .arg(repo().join("harness/gauntlet/tests/ort_batch1.py"))
        .arg(models.join(model))
        .arg(dir.path())
        .arg(models.join(inputs_of).join("testdata/input.f32"))
        .status()
        .expect("start python3 (scripts/test.sh installs the onnxruntime wheel)");
    assert!(status.success(), "ort_batch1.py {model}: {status}");
    std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| {
            let path = f.unwrap().path();
            let variant = path.file_stem().unwrap().to_str().unwrap();
            let variant = variant.strip_prefix("ort_b1_").unwrap().to_string();
            (variant, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// The reference pipeline's batch-1 scores of `model` `variant`.
pub fn reference_batch1_scores(model: &str, variant: &str) -> Vec<u8> {
    std::fs::read(repo().join(format!(
        "scenarios/models/{model}/testdata/ort_b1_{variant}.f32"
    )))
    .unwrap()
}

/// The index of the first f32 where `a` and `b` differ (or where the shorter one ends).
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()) / 4);
    }
    a.chunks_exact(4)
        .zip(b.chunks_exact(4))
        .position(|(x, y)| x != y)
}

/// The first processor's extensions in /proc/cpuinfo (x86 `flags`, ARM `Features`).
pub fn cpu_flags() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find(|l| l.starts_with("flags") || l.starts_with("Features"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, f)| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The CPU's int8 dot-product extensions. onnxruntime's u8s8 kernels without VNNI add pairs of
/// products in saturating 16-bit lanes, with VNNI in 32-bit ones, so int8 scores depend on them.
fn int8_dot_product_flags() -> String {
    let found: Vec<String> = cpu_flags()
        .into_iter()
        .filter(|f| {
            ["avx2", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"].contains(&f.as_str())
        })
        .collect();
    format!("[{}]", found.join(" "))
}

/// Holds the agent's scores `ours` for `model` `variant` bit for bit to this machine's
/// onnxruntime (`local`), and says whether the reference pipeline's figures apply here: whether
/// this machine's onnxruntime reproduces `ort_b1_<variant>.f32`. Only int8 kernels may differ by
/// CPU; where they do, a note names the CPU's flags.
pub fn reference_applies(model: &str, variant: &str, ours: &[u8], local: &[u8]) -> bool {
    assert_eq!(
        first_difference(ours, local),
        None,
        "{model} {variant}: scores equal this machine's onnxruntime at batch 1 bit for bit (ort_batch1.py)"
    );
    let Some(at) = first_difference(local, &reference_batch1_scores(model, variant)) else {
        return true;
    };
    assert!(
        variant.starts_with("int8"),
        "{model} {variant}: this machine's onnxruntime differs from ort_b1_{variant}.f32 at value \
         {at}: only int8 kernels are known to vary by CPU"
    );
    eprintln!(
        "note: {model} {variant}: this machine's onnxruntime (CPU int8 flags {}) gives other \
         scores than the reference pipeline's from value {at} on; the agent is held to this \
         machine's scores instead of the reference figures",
        int8_dot_product_flags()
    );
    false
}

/// Whether this machine's onnxruntime reproduces every int8 batch-1 score file of cwru_cnn, i.e.
/// its int8 kernels are those of the machine the reference pipeline ran on. Computed once.
pub fn int8_kernels_match_reference() -> bool {
    static MATCH: OnceLock<bool> = OnceLock::new();
    *MATCH.get_or_init(|| {
        let local = local_batch1_scores("cwru_cnn", "cwru_cnn");
        let matches = local
            .iter()
            .filter(|(variant, _)| variant.starts_with("int8"))
            .all(|(variant, scores)| {
                first_difference(scores, &reference_batch1_scores("cwru_cnn", variant)).is_none()
            });
        if !matches {
            eprintln!(
                "note: this CPU's onnxruntime int8 kernels (flags {}) give other scores than the \
                 reference pipeline's machine: int8 figures are held to this machine's onnxruntime",
                int8_dot_product_flags()
            );
        }
        matches
    })
}
