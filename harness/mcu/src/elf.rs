use std::path::Path;

use object::{Object, ObjectSection, SectionFlags, SectionKind};

use crate::McuError;

use object::elf::{SHF_ALLOC, SHF_WRITE};

/// Flash bytes (code, read-only data and the load image of initialised data) and static RAM
/// bytes (initialised and zeroed data) of a firmware ELF, from its allocated sections.
pub fn elf_sizes(elf: &Path) -> Result<(u64, u64), McuError> {
    let bytes = std::fs::read(elf).map_err(McuError::io("read", elf))?;
    let file = object::File::parse(&*bytes).map_err(|e| McuError::Elf {
        path: elf.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (mut flash, mut ram) = (0, 0);
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags, .. } = section.flags() else {
            return Err(McuError::Elf {
                path: elf.to_path_buf(),
                reason: "not an ELF file".into(),
            });
        };
        if !sh_flags.contains(SHF_ALLOC) {
            continue;
        }
        let in_file = section.kind() != SectionKind::UninitializedData;
        if in_file {
            flash += section.size();
        }
        if sh_flags.contains(SHF_WRITE) {
            ram += section.size();
        }
    }
    if flash == 0 {
        return Err(McuError::Elf {
            path: elf.to_path_buf(),
            reason: "no allocated sections to flash".into(),
        });
    }
    Ok((flash, ram))
}
