//! Real boards through a debug probe. The [`DebugProbe`] trait is the seam: [`ProbeRsProbe`]
//! drives hardware with probe-rs, [`FakeProbe`] records what would have been done.

use std::path::{Path, PathBuf};

use probe_rs::flashing::{DownloadOptions, ElfOptions, download_file_with_options};
use probe_rs::probe::DebugProbeSelector;
use probe_rs::probe::list::{Accessibility, Lister};
use probe_rs::{Permissions, Session};

use crate::{McuError, elf_sizes};

pub trait DebugProbe {
    /// Writes the ELF's loadable sections to flash; `verify` reads them back.
    fn flash(&mut self, elf: &Path, verify: bool) -> Result<(), McuError>;
    /// Resets the target and lets it run.
    fn reset(&mut self) -> Result<(), McuError>;
}

/// A probe-rs session attached to one chip.
pub struct ProbeRsProbe {
    session: Session,
    selector: String,
}

/// Opens the probe `vid:pid[:serial]` and attaches to `chip` (a probe-rs target name, e.g.
/// `STM32F446RETx`).
pub fn open_probe(
    vid: u16,
    pid: u16,
    serial: Option<&str>,
    chip: &str,
) -> Result<ProbeRsProbe, McuError> {
    open_with(&Lister::new(), selector(vid, pid, serial), chip)
}

fn selector(vid: u16, pid: u16, serial: Option<&str>) -> DebugProbeSelector {
    DebugProbeSelector {
        vendor_id: vid,
        product_id: pid,
        interface: None,
        serial_number: serial.map(str::to_string),
    }
}

fn open_with(
    lister: &Lister,
    selector: DebugProbeSelector,
    chip: &str,
) -> Result<ProbeRsProbe, McuError> {
    let name = selector.to_string();
    let matching = lister.list_with_access(Some(&selector));
    if matching
        .iter()
        .any(|p| p.accessibility == Accessibility::PermissionDenied)
    {
        return Err(McuError::ProbeNotFound {
            selector: name,
            reason: "the probe is attached but this user may not open it (install probe-rs's udev rules)"
                .into(),
        });
    }
    if matching.is_empty() {
        let attached: Vec<String> = lister
            .list_all()
            .iter()
            .map(|p| format!("{} {:04x}:{:04x}", p.identifier, p.vendor_id, p.product_id))
            .collect();
        return Err(McuError::ProbeNotFound {
            selector: name,
            reason: if attached.is_empty() {
                "no debug probe is attached".into()
            } else {
                format!("none matches; attached: {}", attached.join(", "))
            },
        });
    }
    let probe = lister.open(selector).map_err(|e| McuError::ProbeNotFound {
        selector: name.clone(),
        reason: e.to_string(),
    })?;
    let session = probe
        .attach(chip, Permissions::default())
        .map_err(|e| McuError::Attach {
            selector: name.clone(),
            chip: chip.to_string(),
            reason: e.to_string(),
        })?;
    Ok(ProbeRsProbe {
        session,
        selector: name,
    })
}

impl DebugProbe for ProbeRsProbe {
    fn flash(&mut self, elf: &Path, verify: bool) -> Result<(), McuError> {
        let mut options = DownloadOptions::new();
        options.verify = verify;
        let loader = probe_rs::flashing::ElfLoader(ElfOptions::default());
        download_file_with_options(&mut self.session, elf, loader, options).map_err(|e| {
            McuError::Flash {
                selector: self.selector.clone(),
                elf: elf.to_path_buf(),
                reason: e.to_string(),
            }
        })
    }

    fn reset(&mut self) -> Result<(), McuError> {
        let reset_error = |e: probe_rs::Error| McuError::Reset {
            selector: self.selector.clone(),
            reason: e.to_string(),
        };
        let mut core = self.session.core(0).map_err(reset_error)?;
        core.reset().map_err(reset_error)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeCall {
    Flash { elf: PathBuf, verify: bool },
    Reset,
}

/// Records calls instead of touching hardware. Like a real flash it refuses a file that is not
/// a firmware ELF, so a dry run catches a broken build.
#[derive(Debug, Default)]
pub struct FakeProbe {
    pub calls: Vec<ProbeCall>,
}

impl DebugProbe for FakeProbe {
    fn flash(&mut self, elf: &Path, verify: bool) -> Result<(), McuError> {
        elf_sizes(elf)?;
        self.calls.push(ProbeCall::Flash {
            elf: elf.to_path_buf(),
            verify,
        });
        Ok(())
    }

    fn reset(&mut self) -> Result<(), McuError> {
        self.calls.push(ProbeCall::Reset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_rs::probe::list::{ProbeListItem, ProbeLister};
    use probe_rs::probe::{DebugProbeError, Probe};

    /// A USB bus with no probes on it.
    #[derive(Debug)]
    struct EmptyBus;

    impl ProbeLister for EmptyBus {
        fn open(&self, selector: &DebugProbeSelector) -> Result<Probe, DebugProbeError> {
            panic!("open({selector}) must not be tried when nothing matches")
        }

        fn list_with_access(&self, _selector: Option<&DebugProbeSelector>) -> Vec<ProbeListItem> {
            Vec::new()
        }
    }

    #[test]
    fn a_selector_matching_no_probe_is_named_in_the_error() {
        let lister = Lister::with_lister(Box::new(EmptyBus));
        let result = open_with(
            &lister,
            selector(0x0483, 0x374b, Some("0671FF49")),
            "STM32F446RETx",
        );
        let err = result.err().expect("no probe to open").to_string();
        assert!(err.contains("0483:374b:0671FF49"), "{err}");
        assert!(err.contains("no debug probe is attached"), "{err}");
    }

    #[test]
    fn the_real_lister_reports_a_missing_probe_by_selector() {
        // Whatever USB this machine has, no probe carries this serial number.
        let err = open_probe(
            0x0483,
            0x374b,
            Some("gauntlet-no-such-probe"),
            "STM32F446RETx",
        )
        .err()
        .expect("no such probe")
        .to_string();
        assert!(err.contains("0483:374b:gauntlet-no-such-probe"), "{err}");
    }

    #[test]
    fn the_fake_probe_refuses_a_file_that_is_not_an_elf() {
        let dir = tempfile::tempdir().unwrap();
        let bogus = dir.path().join("fw.elf");
        std::fs::write(&bogus, b"not an elf").unwrap();
        let mut probe = FakeProbe::default();
        let err = probe.flash(&bogus, true).unwrap_err().to_string();
        assert!(err.contains("fw.elf"), "{err}");
        assert!(probe.calls.is_empty());
    }
}
