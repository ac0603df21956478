//! Issue 5 acceptance: the HTML report of a realistic run opened in headless Chromium shows every
//! section, logs nothing to the console, keeps a hostile model name inert, and can be screenshotted.
//!
//! Console output is read from Chromium's own log (`--enable-logging=stderr`), where every console
//! message, including Content-Security-Policy violations, appears as a `CONSOLE` line. The report
//! has no JavaScript and a CSP without `script-src`, so any such line is a defect.

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::process::Command;

use gauntlet_report::{HtmlReporter, MemorySamples, ReportInput, Reporter};

const SECTIONS: [&str; 9] = [
    "summary",
    "verdicts",
    "gates",
    "quantization",
    "pareto",
    "details",
    "provenance",
    "promotion",
    "legend",
];

struct Browser {
    program: PathBuf,
    profile: tempfile::TempDir,
}

struct Page {
    dom: String,
    console: Vec<String>,
}

impl Browser {
    fn new(program: PathBuf) -> Self {
        Browser {
            program,
            profile: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, extra: &[String], file: &Path) -> std::process::Output {
        Command::new(&self.program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", file.display()))
            .output()
            .expect("run chromium")
    }

    fn load(&self, file: &Path) -> Page {
        let out = self.command(&["--dump-dom".to_string()], file);
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let console = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_string)
            .collect();
        Page {
            dom: String::from_utf8(out.stdout).unwrap(),
            console,
        }
    }

    fn screenshot(&self, file: &Path, png: &Path) {
        let out = self.command(
            &[
                format!("--screenshot={}", png.display()),
                "--window-size=1280,3000".to_string(),
            ],
            file,
        );
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(chromium) = tools::require("chromium", "chromium") else {
        return;
    };
    let browser = Browser::new(chromium);
    let dir = tempfile::tempdir().unwrap();
    let (results, samples) = fixture::run(5_000, 200);
    let html = HtmlReporter::new()
        .render(&ReportInput::new(&results, &samples))
        .unwrap();
    let file = dir.path().join("report.html");
    std::fs::write(&file, &html).unwrap();

    let page = browser.load(&file);
    assert!(
        page.console.is_empty(),
        "console messages: {:#?}",
        page.console
    );
    for id in SECTIONS {
        assert!(
            page.dom.contains(&format!("id=\"{id}\"")),
            "section `{id}` missing from the DOM"
        );
    }
    // The hostile name survives as text (serialised escaped), never as an element.
    assert!(page.dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !page.dom.to_lowercase().contains("<script"),
        "a script element reached the DOM"
    );
    assert!(page.dom.matches("<svg").count() >= 10, "charts missing");

    let png = dir.path().join("report.png");
    browser.screenshot(&file, &png);
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(
        bytes.len() > 10_000 && bytes.starts_with(b"\x89PNG"),
        "screenshot is {} bytes",
        bytes.len()
    );
    // For a human look: GAUNTLET_KEEP_SCREENSHOT=/tmp/report.png keeps the PNG and the HTML beside it.
    if let Some(keep) = std::env::var_os("GAUNTLET_KEEP_SCREENSHOT").map(PathBuf::from) {
        std::fs::copy(&png, &keep).unwrap();
        std::fs::copy(&file, keep.with_extension("html")).unwrap();
    }
}

/// The console check must be able to fail: a page that tries to run a script is reported.
#[test]
fn console_check_catches_a_script() {
    let Some(chromium) = tools::require("chromium", "chromium") else {
        return;
    };
    let browser = Browser::new(chromium);
    let dir = tempfile::tempdir().unwrap();
    let (results, _) = fixture::run(10, 0);
    let html = HtmlReporter::new()
        .render(&ReportInput::new(&results, &MemorySamples::new()))
        .unwrap()
        .replacen(
            "</body>",
            "<script>console.error('boom')</script></body>",
            1,
        );
    let file = dir.path().join("bad.html");
    std::fs::write(&file, html).unwrap();
    assert!(!browser.load(&file).console.is_empty());
}
