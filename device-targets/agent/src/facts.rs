//! Board and process facts read from a Linux filesystem.
//!
//! Every reader takes the filesystem root (normally `/`) so tests can point it at a fixture tree.
//! Facts a board may legitimately lack (no cpufreq, no os-release) come back as `None`; files
//! that every Linux has but that fail to parse are errors naming the file and field.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parse field '{field}' in {path}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardFacts {
    /// `std::env::consts::ARCH` of the agent build, e.g. `x86_64`, `aarch64`.
    pub arch: String,
    pub cpu_model: Option<String>,
    pub logical_cores: u32,
    pub ram_total_kib: u64,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub cpu_governor: Option<String>,
    /// Of [`KERNEL_FEATURES`], those the CPU has: in /proc/cpuinfo's order, or on arm64 in
    /// that list's order from the process's auxiliary vector.
    pub cpu_features: Vec<String>,
}

/// The CPU extensions that decide which kernels a runtime runs. onnxruntime's x86 u8s8 kernels
/// add pairs of products in saturating 16-bit lanes without VNNI and in 32-bit lanes with it, so
/// one int8 model scores differently on an AVX2 and a VNNI machine of the same model name;
/// dot-product (`asimddp`), `i8mm` and half-precision (`asimdhp`) pick the ARM kernels.
pub const KERNEL_FEATURES: [&str; 17] = [
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_int8",
    "asimd",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
];

/// The first processor's extensions (x86 `flags`, ARM `Features`) that are kernel features.
fn cpu_features(cpuinfo: &str) -> Vec<String> {
    field(cpuinfo, "flags", ':')
        .or_else(|| field(cpuinfo, "Features", ':'))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|f| KERNEL_FEATURES.contains(f))
        .map(str::to_string)
        .collect()
}

/// arm64's [`KERNEL_FEATURES`] as bits of `AT_HWCAP` and `AT_HWCAP2` (the kernel's
/// arch/arm64/include/uapi/asm/hwcap.h).
#[cfg(any(test, all(target_os = "linux", target_arch = "aarch64")))]
const ARM64_HWCAPS: [(&str, u32, u32); 7] = [
    ("asimd", 1, 1),
    ("asimdhp", 1, 10),
    ("asimddp", 1, 20),
    ("i8mm", 2, 13),
    ("bf16", 2, 14),
    ("sve", 1, 22),
    ("sve2", 2, 1),
];

#[cfg(any(test, all(target_os = "linux", target_arch = "aarch64")))]
fn arm64_features(hwcap: u64, hwcap2: u64) -> Vec<String> {
    ARM64_HWCAPS
        .iter()
        .filter(|(_, word, bit)| (if *word == 1 { hwcap } else { hwcap2 }) >> bit & 1 == 1)
        .map(|(name, _, _)| name.to_string())
        .collect()
}

/// On arm64 the extensions the runtimes pick kernels by are the ones the kernel hands the
/// process (`getauxval`). Under QEMU's user-mode emulation (the emulated Pi) /proc/cpuinfo is the
/// host's, an x86 `flags` line, while the auxiliary vector is the emulated CPU's.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn process_cpu_features() -> Option<Vec<String>> {
    // SAFETY: getauxval reads the process's auxiliary vector and answers 0 for a missing entry.
    let (hwcap, hwcap2) = unsafe {
        (
            libc::getauxval(libc::AT_HWCAP),
            libc::getauxval(libc::AT_HWCAP2),
        )
    };
    Some(arm64_features(hwcap, hwcap2))
}

#[cfg(not(all(target_os = "linux", target_arch = "aarch64")))]
fn process_cpu_features() -> Option<Vec<String>> {
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFacts {
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`) of the process so far.
    pub peak_rss_kib: u64,
}

fn read(root: &Path, rel: &str) -> Result<(PathBuf, String), FactsError> {
    let path = root.join(rel);
    match fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(source) => Err(FactsError::Read { path, source }),
    }
}

/// Optional files: absence or unreadability (e.g. no cpufreq in a VM) is not an error.
fn read_optional(root: &Path, rel: &str) -> Option<String> {
    fs::read_to_string(root.join(rel)).ok()
}

/// Value of the first `key<sep>value` line whose key matches exactly (keys are trimmed, as
/// /proc/cpuinfo pads them with tabs).
fn field<'a>(text: &'a str, key: &str, sep: char) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(sep)?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn kib_field(path: &Path, text: &str, key: &str) -> Result<u64, FactsError> {
    let bad = |reason: &str| FactsError::Field {
        path: path.to_path_buf(),
        field: key.to_string(),
        reason: reason.to_string(),
    };
    let value = field(text, key, ':').ok_or_else(|| bad("field missing"))?;
    let number = value
        .strip_suffix("kB")
        .ok_or_else(|| bad("value is not in kB"))?;
    number
        .trim()
        .parse()
        .map_err(|_| bad("value is not an integer"))
}

/// Whether `cpuinfo` describes a CPU of `arch`: x86 kernels write `flags`, ARM kernels
/// `Features`. Under QEMU's user-mode emulation (the emulated Pi) a process reads the host's.
fn cpuinfo_of(arch: &str, cpuinfo: &str) -> bool {
    let (x86, arm) = (
        field(cpuinfo, "flags", ':').is_some(),
        field(cpuinfo, "Features", ':').is_some(),
    );
    match arch {
        "x86" | "x86_64" => !arm || x86,
        "arm" | "aarch64" => !x86 || arm,
        _ => true,
    }
}

/// CPU model: x86 reports `model name`; ARM kernels use `Hardware` or `Model` (Raspberry Pi) and
/// some only `Processor`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware", "Processor", "cpu model"]
        .iter()
        .find_map(|k| field(cpuinfo, k, ':'))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn os_pretty_name(os_release: &str) -> Option<String> {
    let raw = field(os_release, "PRETTY_NAME", '=')?;
    Some(raw.trim_matches(|c| c == '"' || c == '\'').to_string())
}

/// Logical cores: one `processor` line per CPU in /proc/cpuinfo on both x86 and ARM.
fn logical_cores(path: &Path, cpuinfo: &str) -> Result<u32, FactsError> {
    let n = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    if n == 0 {
        return Err(FactsError::Field {
            path: path.to_path_buf(),
            field: "processor".into(),
            reason: "no processor entries".into(),
        });
    }
    Ok(n as u32)
}

/// Reads the board facts under `root` (`/` on a real board).
pub fn board_facts(root: &Path) -> Result<BoardFacts, FactsError> {
    facts_as(root, std::env::consts::ARCH, process_cpu_features())
}

/// The facts of a board whose processes run `arch` code, with the CPU extensions the process was
/// handed when the architecture has a way to say (`None`: /proc/cpuinfo's).
fn facts_as(
    root: &Path,
    arch: &str,
    extensions: Option<Vec<String>>,
) -> Result<BoardFacts, FactsError> {
    let (cpuinfo_path, cpuinfo) = read(root, "proc/cpuinfo")?;
    let (meminfo_path, meminfo) = read(root, "proc/meminfo")?;
    let trimmed = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    // Another architecture's CPU (the emulation's host) names neither this model nor its extensions.
    let native = cpuinfo_of(arch, &cpuinfo);
    Ok(BoardFacts {
        arch: arch.to_string(),
        // Jetsons' aarch64 cpuinfo names no model; the device tree does.
        cpu_model: native.then(|| cpu_model(&cpuinfo)).flatten().or_else(|| {
            read_optional(root, "proc/device-tree/model").and_then(|m| trimmed(m.replace('\0', "")))
        }),
        logical_cores: logical_cores(&cpuinfo_path, &cpuinfo)?,
        ram_total_kib: kib_field(&meminfo_path, &meminfo, "MemTotal")?,
        os: read_optional(root, "etc/os-release").and_then(|t| os_pretty_name(&t)),
        kernel: read_optional(root, "proc/sys/kernel/osrelease").and_then(trimmed),
        cpu_governor: read_optional(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
            .and_then(trimmed),
        cpu_features: extensions.unwrap_or_else(|| {
            if native {
                cpu_features(&cpuinfo)
            } else {
                Vec::new()
            }
        }),
    })
}

/// Reads this process's memory facts from `root/proc/self/status`.
pub fn memory_facts(root: &Path) -> Result<MemoryFacts, FactsError> {
    let (path, status) = read(root, "proc/self/status")?;
    Ok(MemoryFacts {
        rss_kib: kib_field(&path, &status, "VmRSS")?,
        peak_rss_kib: kib_field(&path, &status, "VmHWM")?,
    })
}

/// Times `f` with the monotonic clock, measuring only the call itself.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake root holding `files` (paths relative to it), for the readers of `/proc` and `/sys`.
    pub(crate) fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    const X86_CPUINFO: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nflags\t\t: fpu sse2 avx f16c avx2 avx512f avx512bw avx512_vnni\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
    const PI_CPUINFO: &str = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n\nprocessor\t: 1\n\nprocessor\t: 2\n\nprocessor\t: 3\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
    const MEMINFO: &str = "MemTotal:        8029384 kB\nMemFree:          123456 kB\n";

    #[test]
    fn reads_x86_board() {
        let root = tree(&[
            ("proc/cpuinfo", X86_CPUINFO),
            ("proc/meminfo", MEMINFO),
            (
                "etc/os-release",
                "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
            ),
            ("proc/sys/kernel/osrelease", "6.1.0-27-amd64\n"),
            (
                "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
                "performance\n",
            ),
        ]);
        let f = facts_as(root.path(), "x86_64", None).unwrap();
        assert_eq!(
            f.cpu_model.as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(f.logical_cores, 2);
        assert_eq!(f.ram_total_kib, 8_029_384);
        assert_eq!(f.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(f.kernel.as_deref(), Some("6.1.0-27-amd64"));
        assert_eq!(f.cpu_governor.as_deref(), Some("performance"));
        assert_eq!(f.arch, "x86_64");
        assert_eq!(
            f.cpu_features,
            ["f16c", "avx2", "avx512f", "avx512bw", "avx512_vnni"],
            "the kernel-picking flags, without the others"
        );
    }

    #[test]
    fn a_cpuinfo_of_another_architecture_is_recognised() {
        assert!(cpuinfo_of("x86_64", X86_CPUINFO));
        assert!(cpuinfo_of("aarch64", PI_CPUINFO));
        // The emulated Pi's aarch64 agent reads its x86 host's /proc/cpuinfo.
        assert!(!cpuinfo_of("aarch64", X86_CPUINFO));
        assert!(!cpuinfo_of("x86_64", PI_CPUINFO));
        // Jetsons' cpuinfo and minimal ones without either line are taken as they are.
        assert!(cpuinfo_of("aarch64", "processor\t: 0\n"));
        assert!(cpuinfo_of("riscv64", X86_CPUINFO));
    }

    #[test]
    fn arm64_features_come_from_the_hwcap_bits_in_the_kernel_list_order() {
        // A Cortex-A76 (Pi 5): fp asimd … asimdhp (bit 10) … asimddp (bit 20); no SVE.
        let hwcap = 0b11 | 1 << 10 | 1 << 20 | 1 << 7;
        assert_eq!(arm64_features(hwcap, 0), ["asimd", "asimdhp", "asimddp"]);
        // A Neoverse V1: SVE, and i8mm and bf16 in the second word.
        let features = arm64_features(1 << 1 | 1 << 22, 1 << 13 | 1 << 14 | 1 << 1);
        assert_eq!(features, ["asimd", "i8mm", "bf16", "sve", "sve2"]);
        assert!(
            features
                .iter()
                .all(|f| KERNEL_FEATURES.contains(&f.as_str())),
            "{features:?}"
        );
        assert!(arm64_features(0, 0).is_empty());
    }

    #[test]
    fn reads_raspberry_pi_model_and_tolerates_missing_optional_files() {
        let root = tree(&[("proc/cpuinfo", PI_CPUINFO), ("proc/meminfo", MEMINFO)]);
        let f = facts_as(root.path(), "aarch64", None).unwrap();
        assert_eq!(
            f.cpu_model.as_deref(),
            Some("Raspberry Pi 4 Model B Rev 1.4")
        );
        assert_eq!(f.logical_cores, 4);
        assert_eq!((f.os, f.kernel, f.cpu_governor), (None, None, None));
        // A Pi 4's Cortex-A72 has no dot-product instructions: its int8 kernels are plain NEON.
        assert_eq!(f.cpu_features, ["asimd"]);
    }

    #[test]
    fn an_emulated_board_names_neither_its_hosts_model_nor_extensions() {
        // The emulated Pi: an aarch64 process that reads the x86 host's /proc/cpuinfo and was
        // handed a Cortex-A72's extensions.
        let root = tree(&[("proc/cpuinfo", X86_CPUINFO), ("proc/meminfo", MEMINFO)]);
        let f = facts_as(root.path(), "aarch64", Some(vec!["asimd".into()])).unwrap();
        assert_eq!((f.arch.as_str(), f.cpu_model), ("aarch64", None));
        assert_eq!(f.cpu_features, ["asimd"]);
        let f = facts_as(root.path(), "aarch64", None).unwrap();
        assert!(f.cpu_features.is_empty(), "{:?}", f.cpu_features);
    }

    #[test]
    fn falls_back_to_device_tree_model() {
        let root = tree(&[
            ("proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 62.50\n"),
            ("proc/meminfo", MEMINFO),
            (
                "proc/device-tree/model",
                "NVIDIA Jetson Orin Nano Developer Kit\0",
            ),
        ]);
        let f = board_facts(root.path()).unwrap();
        assert_eq!(
            f.cpu_model.as_deref(),
            Some("NVIDIA Jetson Orin Nano Developer Kit")
        );
    }

    #[test]
    fn missing_cpuinfo_names_the_file() {
        let root = tree(&[("proc/meminfo", MEMINFO)]);
        let err = board_facts(root.path()).unwrap_err().to_string();
        assert!(err.contains("proc/cpuinfo"), "{err}");
    }

    #[test]
    fn malformed_memtotal_names_file_and_field() {
        let root = tree(&[
            ("proc/cpuinfo", X86_CPUINFO),
            ("proc/meminfo", "MemTotal: lots\n"),
        ]);
        let err = board_facts(root.path()).unwrap_err().to_string();
        assert!(
            err.contains("MemTotal") && err.contains("proc/meminfo"),
            "{err}"
        );
    }

    #[test]
    fn reads_rss_and_peak_from_status() {
        let root = tree(&[(
            "proc/self/status",
            "Name:\tagent\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\n",
        )]);
        assert_eq!(
            memory_facts(root.path()).unwrap(),
            MemoryFacts {
                rss_kib: 40_960,
                peak_rss_kib: 51_234
            }
        );
    }

    #[test]
    fn live_process_peak_is_at_least_current_rss() {
        let m = memory_facts(Path::new("/")).unwrap();
        assert!(m.rss_kib > 0 && m.peak_rss_kib >= m.rss_kib, "{m:?}");
    }

    #[test]
    fn live_board_has_cores_and_ram() {
        let f = board_facts(Path::new("/")).unwrap();
        assert!(f.logical_cores >= 1 && f.ram_total_kib > 0, "{f:?}");
    }
}
