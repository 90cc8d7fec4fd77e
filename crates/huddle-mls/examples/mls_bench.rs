//! Native MLS benchmark: prints a table and writes `reports/mls-native.json` (run by `scripts/bench`).

use huddle_mls::bench::{json, run, table, BenchPlan};
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let plan = if quick {
        BenchPlan::QUICK
    } else {
        BenchPlan::FULL
    };
    let origin = Instant::now();
    let rows = futures::executor::block_on(run(plan, &|| origin.elapsed().as_secs_f64() * 1000.0));
    print!("{}", table("MLS 0x0007, native (opt-level 3)", &rows));
    let out_dir = std::env::var("HUDDLE_REPORTS_DIR").unwrap_or_else(|_| "reports".to_owned());
    if let Err(error) = std::fs::create_dir_all(&out_dir)
        .and_then(|_| std::fs::write(format!("{out_dir}/mls-native.json"), json("native", &rows)))
    {
        eprintln!("could not write the report: {error}");
        std::process::exit(1);
    }
    println!("figures written to {out_dir}/mls-native.json");
}
