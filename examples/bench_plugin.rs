//! The cost of calling a user model through the plugin ABI, against the
//! built-in model with the same arithmetic (a correlated 2-D Gaussian):
//! per call of `log_density`, and per point of `log_density_batch` in
//! batches of 64. Run by `scripts/bench-plugin.sh`, which builds the C
//! example first.
//!
//!   cargo run --release --example bench_plugin -- examples/plugins/c/libgaussian.so

use std::hint::black_box;

use std::time::Instant;

use sampo::model::plugin::Plugin;
use sampo::model::{Gaussian, LogDensity, PluginSpec};

const CALLS: usize = 20_000_000;
const BATCH: usize = 64;

/// Nanoseconds per point, best of 5 runs of `f` over CALLS points.
fn time(mut f: impl FnMut() -> f64) -> (f64, f64) {
    let mut best = f64::INFINITY;
    let mut sum = 0.0;
    for _ in 0..5 {
        let start = Instant::now();
        sum += black_box(f());
        best = best.min(start.elapsed().as_secs_f64() * 1e9 / CALLS as f64);
    }
    (best, sum)
}

fn main() {
    let lib = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/plugins/c/libgaussian.so".into());
    let config = r#"{"mean": [1.0, -1.0], "cov": [[1.0, 0.5], [0.5, 2.0]]}"#;
    let spec = PluginSpec::load(std::path::Path::new(&lib), config).expect("the plugin loads");
    let plugin = Plugin::for_state(&spec, "g", 2).expect("the plugin loads");
    let builtin = Gaussian::new(&[1.0, -1.0], &[vec![1.0, 0.5], vec![0.5, 2.0]]).unwrap();
    // Points cycling through a small set, so that memory plays no part.
    let points: Vec<f64> = (0..2 * BATCH)
        .map(|i| (i as f64 * 0.37).sin() * 2.0)
        .collect();

    let (native, _) = time(|| {
        let mut s = 0.0;
        for i in 0..CALLS {
            let k = 2 * (i % BATCH);
            s += builtin.log_density(black_box(&points[k..k + 2])).unwrap();
        }
        s
    });
    let (single, _) = time(|| {
        let mut s = 0.0;
        for i in 0..CALLS {
            let k = 2 * (i % BATCH);
            s += plugin.log_density(black_box(&points[k..k + 2])).unwrap();
        }
        s
    });
    let mut out = vec![0.0; BATCH];
    let (batch, _) = time(|| {
        let mut s = 0.0;
        for _ in 0..CALLS / BATCH {
            plugin
                .log_density_batch(black_box(&points), &mut out)
                .unwrap();
            s += out[0];
        }
        s
    });
    println!("ns per point, best of 5 × {CALLS} points ({lib}, 2-D Gaussian):");
    println!("  built-in Gaussian              {native:6.2}");
    println!(
        "  plugin log_density             {single:6.2}   overhead {:+.2} ns per call",
        single - native
    );
    println!(
        "  plugin log_density_batch ({BATCH})  {batch:6.2}   overhead {:+.2} ns per point",
        batch - native
    );
}
