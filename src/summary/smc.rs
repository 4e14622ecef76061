//! The summary of an SMC output (`/smc/<state>`): each state's evidence,
//! its probability among the states, and its parameters' posterior
//! statistics from the weighted particles. The groups are independent runs,
//! so the Monte Carlo error of a posterior mean is the spread of the
//! groups' means, as the error of log Z is the spread of theirs.

use std::io::{self, Write};

use hdf5::types::FixedUnicode;
use hdf5::File;
use serde_json::{json, Value};

use super::{csv_field, number};
use crate::diag::SUMMARY_COLUMNS;
use crate::spec::NAME_MAX;

/// One state's evidence from an SMC run, its probability among the states
/// when there are several, and its parameters.
#[derive(Debug, Clone)]
pub struct EvidenceSummary {
    pub state: String,
    pub log_z: f64,
    pub log_z_err: f64,
    pub iterations: u64,
    /// (probability, error) from `/smc/state_probabilities`.
    pub probability: Option<(f64, f64)>,
    /// Independent groups, particles kept, and the Kish effective sample
    /// size (Σw)²/Σw² of their final weights.
    pub groups: usize,
    pub particles: usize,
    pub ess: f64,
    pub params: Vec<WeightedRow>,
}

/// A parameter's posterior statistics from the weighted particles.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedRow {
    pub name: String,
    pub mean: f64,
    pub sd: f64,
    /// Standard error of the mean: sd of the groups' means / √groups (NaN
    /// with one group).
    pub mcse_mean: f64,
    pub q05: f64,
    pub q50: f64,
    pub q95: f64,
}

/// The evidences of `/smc`, in the order of the state probabilities (the
/// spec's) when there are several; empty for other kinds or an unfinished
/// run.
pub(super) fn read_evidences(file: &File) -> hdf5::Result<Vec<EvidenceSummary>> {
    let Ok(smc) = file.group("smc") else {
        return Ok(Vec::new());
    };
    let probs = file
        .dataset("smc/state_probabilities/state")
        .and_then(|d| d.read_raw::<FixedUnicode<NAME_MAX>>())
        .ok()
        .map(|names| -> hdf5::Result<Vec<(String, f64, f64)>> {
            let p = file
                .dataset("smc/state_probabilities/probability")?
                .read_raw::<f64>()?;
            let e = file
                .dataset("smc/state_probabilities/error")?
                .read_raw::<f64>()?;
            Ok(names
                .iter()
                .zip(p)
                .zip(e)
                .map(|((n, p), e)| (n.as_str().to_owned(), p, e))
                .collect())
        })
        .transpose()?;
    let mut names: Vec<String> = match &probs {
        Some(p) => p.iter().map(|(n, _, _)| n.clone()).collect(),
        None => smc.member_names()?,
    };
    names.retain(|n| n != "state_probabilities");
    let mut out = Vec::new();
    for name in names {
        let g = smc.group(&name)?;
        let Ok(ev) = g.dataset("evidence").and_then(|d| d.read_raw::<f64>()) else {
            continue;
        };
        if ev.len() < 3 || ev[2] == 0.0 || ev[0].is_nan() {
            continue; // not finished
        }
        let probability = probs
            .as_ref()
            .and_then(|p| p.iter().find(|(n, _, _)| *n == name))
            .map(|(_, p, e)| (*p, *e));
        let params: Vec<String> = g
            .attr("params")
            .and_then(|a| a.read_raw::<hdf5::types::VarLenUnicode>())
            .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect())
            .unwrap_or_default();
        let x = g.dataset("particles")?;
        let dim = x.shape().get(1).copied().unwrap_or(1);
        let x = x.read_raw::<f64>()?;
        let log_w = g.dataset("log_weights")?.read_raw::<f64>()?;
        let group = g.dataset("group")?.read_raw::<i64>()?;
        let groups = group.iter().copied().max().unwrap_or(0) as usize + 1;
        let params = (0..dim)
            .map(|k| {
                let label = params.get(k).cloned().unwrap_or_else(|| format!("x{k}"));
                let column: Vec<f64> = x.iter().skip(k).step_by(dim).copied().collect();
                weighted_row(label, &column, &log_w, &group, groups)
            })
            .collect();
        let top = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = log_w.iter().map(|l| (l - top).exp()).collect();
        let ess = w.iter().sum::<f64>().powi(2) / w.iter().map(|v| v * v).sum::<f64>();
        out.push(EvidenceSummary {
            state: name,
            log_z: ev[0],
            log_z_err: ev[1],
            iterations: ev[2] as u64,
            probability,
            groups,
            particles: log_w.len(),
            ess,
            params,
        });
    }
    Ok(out)
}

/// Weighted mean, sd and quantiles of one parameter over all particles,
/// and the standard error of the mean from the groups' means.
pub fn weighted_row(
    name: String,
    x: &[f64],
    log_w: &[f64],
    group: &[i64],
    groups: usize,
) -> WeightedRow {
    let top = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = w.iter().sum();
    let mean = x.iter().zip(&w).map(|(x, w)| x * w).sum::<f64>() / total;
    let var = x
        .iter()
        .zip(&w)
        .map(|(x, w)| w * (x - mean) * (x - mean))
        .sum::<f64>()
        / total;
    let (mut num, mut den) = (vec![0.0; groups], vec![0.0; groups]);
    for ((x, w), g) in x.iter().zip(&w).zip(group) {
        num[*g as usize] += x * w;
        den[*g as usize] += w;
    }
    let means: Vec<f64> = num.iter().zip(&den).map(|(n, d)| n / d).collect();
    let mcse_mean = if groups > 1 {
        let m = means.iter().sum::<f64>() / groups as f64;
        let v = means.iter().map(|g| (g - m) * (g - m)).sum::<f64>() / (groups - 1) as f64;
        (v / groups as f64).sqrt()
    } else {
        f64::NAN
    };
    let mut order: Vec<usize> = (0..x.len()).filter(|&i| w[i] > 0.0).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let quantile = |q: f64| {
        let mut cum = 0.0;
        for &i in &order {
            cum += w[i] / total;
            if cum >= q {
                return x[i];
            }
        }
        order.last().map_or(f64::NAN, |&i| x[i])
    };
    WeightedRow {
        name,
        mean,
        sd: var.sqrt(),
        mcse_mean,
        q05: quantile(0.05),
        q50: quantile(0.5),
        q95: quantile(0.95),
    }
}

pub(super) fn write_table(out: &mut dyn Write, evidences: &[EvidenceSummary]) -> io::Result<()> {
    if evidences.is_empty() {
        return Ok(());
    }
    for e in evidences {
        writeln!(
            out,
            "state {} (smc): {} particles kept in {} groups, {} iterations; ESS of the final weights {:.0}",
            e.state, e.particles, e.groups, e.iterations, e.ess
        )?;
        writeln!(
            out,
            "  {:<14} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            "param", "mean", "sd", "mcse_mean", "q05", "q50", "q95"
        )?;
        for r in &e.params {
            writeln!(
                out,
                "  {:<14} {:>12.6} {:>12.6} {:>12.6} {:>12.6} {:>12.6} {:>12.6}",
                r.name, r.mean, r.sd, r.mcse_mean, r.q05, r.q50, r.q95
            )?;
        }
    }
    writeln!(
        out,
        "{:<16} {:>14} {:>10} {:>10} {:>12} {:>10}",
        "state (smc)", "log Z", "± err", "iterations", "probability", "± err"
    )?;
    for e in evidences {
        let (p, pe) = e
            .probability
            .map_or((String::new(), String::new()), |(p, e)| {
                (format!("{p:.6}"), format!("{e:.6}"))
            });
        writeln!(
            out,
            "{:<16} {:>14.6} {:>10.6} {:>10} {:>12} {:>10}",
            e.state, e.log_z, e.log_z_err, e.iterations, p, pe
        )?;
    }
    Ok(())
}

/// Rows of the summary CSV: one per parameter (mean, sd, mcse_mean and the
/// quantiles), then `log_evidence` (mean = log Z, mcse_mean = its error)
/// and `probability` with several states; the MCMC columns stay empty.
pub(super) fn write_csv(out: &mut dyn Write, evidences: &[EvidenceSummary]) -> io::Result<()> {
    for e in evidences {
        let mut rows: Vec<(String, Vec<(&str, f64)>)> = e
            .params
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    vec![
                        ("mean", r.mean),
                        ("sd", r.sd),
                        ("mcse_mean", r.mcse_mean),
                        ("q05", r.q05),
                        ("q50", r.q50),
                        ("q95", r.q95),
                    ],
                )
            })
            .collect();
        rows.push((
            "log_evidence".into(),
            vec![("mean", e.log_z), ("mcse_mean", e.log_z_err)],
        ));
        if let Some((p, pe)) = e.probability {
            rows.push(("probability".into(), vec![("mean", p), ("mcse_mean", pe)]));
        }
        for (param, values) in rows {
            write!(out, "{},0,{}", csv_field(&e.state), csv_field(&param))?;
            for c in SUMMARY_COLUMNS {
                match values.iter().find(|(n, _)| *n == c) {
                    Some((_, v)) => write!(out, ",{v}")?,
                    None => write!(out, ",")?,
                }
            }
            writeln!(out, ",{},{},true,", e.particles, e.groups)?;
        }
    }
    Ok(())
}

pub(super) fn to_json(e: &EvidenceSummary) -> Value {
    let params: Vec<Value> = e
        .params
        .iter()
        .map(|r| {
            json!({
                "param": r.name,
                "mean": number(r.mean),
                "sd": number(r.sd),
                "mcse_mean": number(r.mcse_mean),
                "q05": number(r.q05),
                "q50": number(r.q50),
                "q95": number(r.q95),
            })
        })
        .collect();
    json!({
        "state": e.state,
        "log_evidence": number(e.log_z),
        "log_evidence_err": number(e.log_z_err),
        "iterations": e.iterations,
        "groups": e.groups,
        "particles": e.particles,
        "ess": number(e.ess),
        "probability": e.probability.map(|p| number(p.0)),
        "probability_err": e.probability.map(|p| number(p.1)),
        "params": params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_statistics_of_two_groups() {
        // Group 0 holds 1, 2, 3 with weights 1, 2, 1; group 1 holds 4 alone.
        let x = [1.0, 2.0, 3.0, 4.0];
        let log_w = [0.25f64.ln(), 0.5f64.ln(), 0.25f64.ln(), 1.0f64.ln()].map(|l| l + 0.5f64.ln());
        let r = weighted_row("x".into(), &x, &log_w, &[0, 0, 0, 1], 2);
        // Weights 1/8, 1/4, 1/8, 1/2: mean 3, the groups' means 2 and 4.
        assert!((r.mean - 3.0).abs() < 1e-12, "{r:?}");
        let var = (4.0 / 8.0) + (1.0 / 4.0) + 0.0 + (1.0 / 2.0);
        assert!((r.sd - f64::sqrt(var)).abs() < 1e-12, "{r:?}");
        assert!((r.mcse_mean - 1.0).abs() < 1e-12, "{r:?}");
        assert_eq!((r.q05, r.q50, r.q95), (1.0, 3.0, 4.0));
    }
}
