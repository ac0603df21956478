//! Issue 5: the HTML report of a run with 1,000,000 device latency samples per build (five builds)
//! renders in < 2 s and < 3 MB. Prints the size once; criterion reports the time.

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_report::{HtmlReporter, MemorySamples, ReportInput, Reporter};

fn html(c: &mut Criterion) {
    // Few bootstrap resamples: the fixture's statistics are set-up, not what is measured.
    let (results, samples): (_, MemorySamples) = fixture::run(1_000_000, 20);
    let reporter = HtmlReporter::new();
    let input = ReportInput::new(&results, &samples);
    let size = reporter.render(&input).unwrap().len();
    eprintln!("report.html: {size} bytes for 5 builds x 1,000,000 samples");
    let mut group = c.benchmark_group("html");
    group.sample_size(10);
    group.bench_function("report_5x1e6_samples", |b| {
        b.iter(|| reporter.render(black_box(&input)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, html);
criterion_main!(benches);
