//! External programs the integration tests drive. A missing program skips its test loudly on a
//! developer machine, but fails it under CI (`CI` set), where scripts/test.sh must have installed it.

use std::io::Write as _;
use std::path::PathBuf;

pub fn require(program: &str, debian_package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(
            !ci,
            "`{program}` is not installed but CI is set: install the Debian package `{debian_package}`"
        );
        // Written to the stderr handle rather than with `eprintln!`, which the test harness captures
        // and hides for passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED: `{program}` not found (Debian package `{debian_package}`); this test fails under CI=true\n{bar}\n",
            bar = "!".repeat(78)
        );
    }
    found
}
