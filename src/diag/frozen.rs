//! The summaries of a few chains as the diagnostics gave them before they
//! were made fast (issue 24: statrs's `erfc_inv`, a comparison sort, one
//! inverse FFT per walker for τ), frozen here so that every later change is
//! held to them: equal to 1e-12 (relative), rounding only.
//!
//! `SAMPO_PRINT_FROZEN=1 cargo test --release --lib diag::frozen -- --nocapture`
//! prints the current values in the form of [`FROZEN`].

use super::summary::ChainAccumulator;
use super::ChainSummary;

/// One case: rows × walkers × ndim, an AR(1) coefficient, the chance that a
/// step moves (the rest repeat the last value, as an ensemble's rejected
/// proposals do: ties), a grid the values are rounded to (0 for none: ties
/// across walkers), and the memory bound (strides τ and the diagnostics).
struct Case {
    rows: usize,
    walkers: usize,
    ndim: usize,
    phi: f64,
    moves: f64,
    grid: f64,
    limit: usize,
}

const CASES: [Case; 4] = [
    // Odd draws (the middle draw of each chain left out), ties within walkers.
    Case {
        rows: 2001,
        walkers: 16,
        ndim: 3,
        phi: 0.9,
        moves: 0.45,
        grid: 0.0,
        limit: 1 << 23,
    },
    // Slow mixing: Geyer's sequence runs past the short FFT padding.
    Case {
        rows: 1200,
        walkers: 8,
        ndim: 2,
        phi: 0.995,
        moves: 1.0,
        grid: 0.0,
        limit: 1 << 23,
    },
    // Values on a grid: ties across walkers and about the median.
    Case {
        rows: 600,
        walkers: 32,
        ndim: 2,
        phi: 0.5,
        moves: 0.7,
        grid: 0.1,
        limit: 1 << 23,
    },
    // Strided: every 5th row kept.
    Case {
        rows: 2001,
        walkers: 16,
        ndim: 3,
        phi: 0.9,
        moves: 0.45,
        grid: 0.0,
        limit: 20_000,
    },
];

/// The chain of a case, row-major (row, walker, parameter).
fn chain(case: &Case, seed: u64) -> Vec<f64> {
    let mut uniform = super::noise::uniforms(seed);
    let n = case.walkers * case.ndim;
    let mut state = vec![0.0; n];
    let mut out = Vec::with_capacity(case.rows * n);
    for _ in 0..case.rows {
        for (i, x) in state.iter_mut().enumerate() {
            if uniform() < case.moves {
                let z = super::noise::normal(&mut uniform);
                *x = case.phi * *x + (1.0 - case.phi * case.phi).sqrt() * z;
            }
            let offset = (i % case.ndim) as f64 * 3.0 - 1.0;
            let value = *x + offset;
            out.push(if case.grid > 0.0 {
                (value / case.grid).round() * case.grid
            } else {
                value
            });
        }
    }
    out
}

fn summaries(case: &Case, seed: u64) -> Vec<ChainSummary> {
    let c = chain(case, seed);
    let mut acc = ChainAccumulator::with_limit(case.walkers, case.ndim, case.rows, case.limit);
    acc.push(&c);
    acc.finish()
}

/// Mean, sd, τ and the 15 values of [`super::ParamDiagnostics`].
fn values(s: &ChainSummary) -> [f64; 18] {
    let d = &s.diagnostics;
    [
        s.mean,
        s.sd,
        s.tau,
        d.mean,
        d.sd,
        d.q05,
        d.q50,
        d.q95,
        d.mcse_mean,
        d.mcse_sd,
        d.mcse_q05,
        d.mcse_q50,
        d.mcse_q95,
        d.ess_bulk,
        d.ess_tail,
        d.rhat_bulk,
        d.rhat_tail,
        d.rhat,
    ]
}

const NAMES: [&str; 18] = [
    "mean",
    "sd",
    "tau",
    "d.mean",
    "d.sd",
    "q05",
    "q50",
    "q95",
    "mcse_mean",
    "mcse_sd",
    "mcse_q05",
    "mcse_q50",
    "mcse_q95",
    "ess_bulk",
    "ess_tail",
    "rhat_bulk",
    "rhat_tail",
    "rhat",
];

/// Per case, per parameter: [`values`] as computed before issue 24.
const FROZEN: &[&[[f64; 18]]] = &[
    &[
        [
            -1.0318873471490244,
            0.9765672679479707,
            35.52090210063392,
            -1.031887347149025,
            0.9765672679479803,
            -2.6198846597460053,
            -1.0315582582637095,
            0.5815501489084705,
            0.03558232157372523,
            0.018353855376390275,
            0.048137800564473254,
            0.04026081268021481,
            0.06144270148493036,
            753.4074963115286,
            1577.9591004980903,
            1.019364645777737,
            1.0095011679456665,
            1.019364645777737,
        ],
        [
            1.9740907946923458,
            0.9865533208214686,
            34.2690358056539,
            1.9740907946923414,
            0.9865533208214613,
            0.3447512327643971,
            1.9764922244480874,
            3.567545111703871,
            0.03578099281411954,
            0.019711410366956974,
            0.05535225736808691,
            0.03542159122715982,
            0.06351975534578136,
            762.4486298947971,
            1296.6245919351074,
            1.0175246444343327,
            1.0078623618597493,
            1.0175246444343327,
        ],
        [
            5.08424953267106,
            0.9722310284177734,
            31.327893570766484,
            5.0842495326710395,
            0.9722310284177752,
            3.4884785730497447,
            5.066997020727866,
            6.703865302247947,
            0.03315463769026201,
            0.016910038533399775,
            0.043890218336722464,
            0.034548404341534944,
            0.045454459853051965,
            859.9819417887958,
            1629.9685219906328,
            1.0148164463466085,
            1.0060053861817175,
            1.0148164463466085,
        ],
    ],
    &[
        [
            -0.9932810290389915,
            1.012402304380137,
            95.39306128562194,
            -0.9932810290389891,
            1.0124023043801371,
            -2.643414314740478,
            -0.9865786350858725,
            0.7889120114711341,
            0.2572661191812401,
            0.11260163503693368,
            0.27308733495419735,
            0.24291389083397075,
            0.3812749276779671,
            15.677969043963715,
            42.09440090581065,
            1.4875524766431443,
            1.139401130173869,
            1.4875524766431443,
        ],
        [
            2.0206601729141953,
            0.8599912949414544,
            106.8188869316076,
            2.020660172914198,
            0.8599912949414523,
            0.5661748858212227,
            2.101876912003063,
            3.354129904230107,
            0.15146624449347737,
            0.07203976344613182,
            0.2374089771789366,
            0.12180555955229844,
            0.18048550102614191,
            32.9453975859502,
            47.74694583924607,
            1.1876386546126207,
            1.0804020273468433,
            1.1876386546126207,
        ],
    ],
    &[
        [
            -1.0072760416666648,
            0.9971252375506415,
            4.613926636063355,
            -1.0072760416666668,
            0.9971252375505997,
            -2.6,
            -1.0,
            0.7000000000000001,
            0.015525024573374869,
            0.008275941109173544,
            0.050000000000000044,
            0.0,
            0.04999999999999999,
            4118.908437164206,
            7202.648631269974,
            1.0068657964182228,
            1.0027079628031712,
            1.0068657964182228,
        ],
        [
            1.9947291666666638,
            1.0066808083456544,
            4.639508578104479,
            1.9947291666666669,
            1.006680808345668,
            0.30000000000000004,
            2.0,
            3.6,
            0.016056781302449523,
            0.008732428117269096,
            0.04999999999999999,
            0.0,
            0.050000000000000044,
            3926.144421118474,
            6839.365147836405,
            1.0058005098243419,
            1.0036633928238001,
            1.0058005098243419,
        ],
    ],
    &[
        [
            -0.9983830426217993,
            0.9705078788606852,
            29.703489806639247,
            -0.9964143177961547,
            0.9644350776882554,
            -2.6047181093857623,
            -0.9958932325215625,
            0.606055010527283,
            0.03342232115113424,
            0.01722959213979658,
            0.055660391012066546,
            0.032581533127341356,
            0.060589805477136105,
            832.4444839944337,
            1389.2076078099967,
            1.023389267603654,
            1.0052943879182983,
            1.023389267603654,
        ],
        [
            1.9687099258820215,
            0.9956619509651408,
            47.04606146413183,
            1.9679926626792292,
            0.9941368294247576,
            0.3386537305978071,
            1.9698237116819577,
            3.5914674525884203,
            0.03988453397742922,
            0.019846692500931136,
            0.06207211852377492,
            0.035490205239788075,
            0.05158308908353315,
            622.308191139131,
            1255.4338699319571,
            1.0136557890138969,
            1.005604558198278,
            1.0136557890138969,
        ],
        [
            5.00575323689903,
            1.001742679556955,
            33.796820586081594,
            5.002464152621001,
            1.0046468959977768,
            3.3838760607536464,
            5.000378736612936,
            6.67389757965871,
            0.035931466671707525,
            0.018273277020681364,
            0.04462850473536828,
            0.03578739034031253,
            0.06945675946512075,
            781.9195601263449,
            1638.3017289673414,
            1.0128438145085796,
            1.0054630868159107,
            1.0128438145085796,
        ],
    ],
];

#[test]
fn summaries_equal_the_frozen_ones() {
    if std::env::var_os("SAMPO_PRINT_FROZEN").is_some() {
        println!("const FROZEN: &[&[[f64; 18]]] = &[");
        for (i, case) in CASES.iter().enumerate() {
            println!("    &[");
            for s in summaries(case, 17 + i as u64) {
                let v: Vec<String> = values(&s).iter().map(|x| format!("{x:?}")).collect();
                println!("        [{}],", v.join(", "));
            }
            println!("    ],");
        }
        println!("];");
        return;
    }
    assert_eq!(FROZEN.len(), CASES.len());
    for (i, case) in CASES.iter().enumerate() {
        let now = summaries(case, 17 + i as u64);
        assert_eq!(now.len(), FROZEN[i].len());
        for (k, (s, want)) in now.iter().zip(FROZEN[i]).enumerate() {
            for ((got, want), name) in values(s).iter().zip(want).zip(NAMES) {
                let close = got == want
                    || (got.is_nan() && want.is_nan())
                    || (got - want).abs() <= 1e-12 * want.abs();
                assert!(
                    close,
                    "case {i}, parameter {k}, {name}: {got:?} vs {want:?}"
                );
            }
        }
    }
}
