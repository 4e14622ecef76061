//! Designs: the points a batch evaluates. Any item's point is computed
//! from the spec, the seed and its index alone — never from the others —
//! so a chunk of items needs memory for the chunk only, and any subset can
//! be recomputed by itself (validation, a resumed run, another layout).
//!
//! - `random`: i.i.d. draws from the state's prior, item i from its own
//!   stream keyed (seed, batch, state, i).
//! - `lhs`: a Latin hypercube mapped through the prior's quantiles: in each
//!   parameter, item i falls in stratum π(i) of `items` equal strata, π a
//!   seeded permutation computed pointwise (a Feistel network over
//!   [0, items), cycle-walked), and at a uniform place within it.
//! - `sobol`: a Sobol sequence (Joe & Kuo's direction numbers, natural
//!   order, up to 2³² items) with Owen's nested uniform scrambling, keyed
//!   by the seed and state, mapped through the prior's quantiles: each
//!   coordinate's digits are flipped by a hash of the digits above them,
//!   and the digits below the 32nd are drawn from the item's stream.
//! - `grid`: the full factorial of one axis per parameter, in the order of
//!   the state's `params` with the last varying fastest (C order, like
//!   `numpy.meshgrid(..., indexing="ij")` raveled).
//! - `file`: the rows of a CSV file whose header names the parameters
//!   (other columns are ignored), or of a two-dimensional HDF5 dataset
//!   whose columns are named by its `params` attribute (or, without one,
//!   are the state's parameters in order), in file order.

use std::path::{Path, PathBuf};

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::model::Prior;
use crate::seed::StreamKey;
use crate::spec::StateSpec;

/// The resolved design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Design {
    Random,
    Lhs,
    Sobol,
    /// An axis per parameter name (of any state).
    Grid {
        axes: Vec<(String, Axis)>,
    },
    File(DesignFile),
}

impl Design {
    pub fn name(&self) -> &'static str {
        match self {
            Design::Random => "random",
            Design::Lhs => "lhs",
            Design::Sobol => "sobol",
            Design::Grid { .. } => "grid",
            Design::File(_) => "file",
        }
    }
}

/// The points of one state's design.
pub struct Points {
    kind: PointsKind,
    items: u64,
}

enum PointsKind {
    Random {
        key: StreamKey,
        prior: Prior,
    },
    Lhs {
        key: StreamKey,
        prior: Prior,
        /// A permutation key per parameter.
        keys: Vec<u64>,
    },
    Sobol {
        key: StreamKey,
        prior: Prior,
        /// Direction numbers, 32 per parameter.
        directions: Vec<[u32; 32]>,
        /// A scrambling key per parameter.
        keys: Vec<u64>,
    },
    Grid {
        /// The state's axes, in parameter order.
        axes: Vec<Vec<f64>>,
    },
    File {
        /// The state's columns of every row, row-major.
        values: Vec<f64>,
        dim: usize,
    },
}

impl Points {
    /// The design of `state` (with `items` points) under `key` (the
    /// state's streams).
    pub fn new(
        design: &Design,
        state: &StateSpec,
        prior: Option<&Prior>,
        items: u64,
        key: StreamKey,
    ) -> Result<Self, String> {
        let kind = match design {
            Design::Random => PointsKind::Random {
                key,
                prior: prior.expect("a random design has a prior").clone(),
            },
            Design::Lhs => {
                // Index u64::MAX − j is never an item's (items ≤ 2⁴⁰).
                let keys = (0..state.dim() as u64)
                    .map(|j| key.stream(u64::MAX - j).random::<u64>())
                    .collect();
                PointsKind::Lhs {
                    key,
                    prior: prior.expect("a Latin hypercube has a prior").clone(),
                    keys,
                }
            }
            Design::Sobol => {
                let dim = state.dim();
                let params = sobol::params::JoeKuoD6::standard();
                if dim > params.max_dims {
                    return Err(format!(
                        "a Sobol design has at most {} parameters",
                        params.max_dims
                    ));
                }
                PointsKind::Sobol {
                    key,
                    prior: prior.expect("a Sobol design has a prior").clone(),
                    directions: (0..dim).map(|j| directions(&params, j)).collect(),
                    keys: (0..dim as u64)
                        .map(|j| key.stream(u64::MAX - j).random::<u64>())
                        .collect(),
                }
            }
            Design::Grid { axes } => PointsKind::Grid {
                axes: state
                    .params
                    .iter()
                    .map(|p| {
                        axes.iter()
                            .find(|(k, _)| k == p)
                            .map(|(_, a)| a.values())
                            .expect("every parameter has an axis (checked)")
                    })
                    .collect(),
            },
            Design::File(f) => PointsKind::File {
                values: f.load(&state.params)?,
                dim: state.dim(),
            },
        };
        Ok(Self { kind, items })
    }

    /// Item `i`'s point into `out` (the state's dimension).
    pub fn point(&self, i: u64, out: &mut [f64]) {
        match &self.kind {
            PointsKind::Random { key, prior } => prior.sample(&mut key.stream(i), out),
            PointsKind::Lhs { key, prior, keys } => {
                let mut rng = key.stream(i);
                let n = self.items as f64;
                let u: Vec<f64> = keys
                    .iter()
                    .map(|&k| {
                        let stratum = permute(i, self.items, k) as f64;
                        // Strictly inside (0, 1): random() is in [0, 1).
                        let v = rng.random::<f64>().max(f64::MIN_POSITIVE);
                        (stratum + v) / n
                    })
                    .collect();
                prior.quantile(&u, out);
            }
            PointsKind::Sobol {
                key,
                prior,
                directions,
                keys,
            } => {
                let mut rng = key.stream(i);
                let u: Vec<f64> = directions
                    .iter()
                    .zip(keys)
                    .map(|(v, &k)| {
                        let digits = owen_scramble(sobol_digits(v, i as u32), k);
                        // The digits below the 32nd, uniform: (0, 1) strictly.
                        let below = rng.random::<f64>().max(f64::MIN_POSITIVE);
                        (f64::from(digits) + below) / 4_294_967_296.0
                    })
                    .collect();
                prior.quantile(&u, out);
            }
            PointsKind::Grid { axes } => {
                let mut rest = i;
                for (o, axis) in out.iter_mut().zip(axes).rev() {
                    let n = axis.len() as u64;
                    *o = axis[(rest % n) as usize];
                    rest /= n;
                }
            }
            PointsKind::File { values, dim } => {
                let at = i as usize * dim;
                out.copy_from_slice(&values[at..at + dim]);
            }
        }
    }
}

/// A bijection of [0, n) keyed by `key`, computed pointwise: a balanced
/// Feistel network on the smallest even number of bits covering n, walked
/// until it lands inside (fewer than 4 steps on average).
pub fn permute(i: u64, n: u64, key: u64) -> u64 {
    debug_assert!(i < n);
    let bits = (64 - (n.max(2) - 1).leading_zeros()).div_ceil(2).max(1);
    let mask = (1u64 << bits) - 1;
    let mut x = i;
    loop {
        let (mut left, mut right) = (x >> bits, x & mask);
        for round in 0..4u64 {
            let f = mix(right ^ key.rotate_left(16 * round as u32) ^ round) & mask;
            (left, right) = (right, left ^ f);
        }
        x = (left << bits) | right;
        if x < n {
            return x;
        }
    }
}

/// The 32 direction numbers of Sobol dimension `j` (0: van der Corput),
/// from the degree s, coefficients a and initial numbers m of its primitive
/// polynomial (Bratley & Fox's recurrence).
fn directions(params: &sobol::params::JoeKuoD6, j: usize) -> [u32; 32] {
    let mut v = [0u32; 32];
    if j == 0 {
        for (k, vk) in v.iter_mut().enumerate() {
            *vk = 1 << (31 - k);
        }
        return v;
    }
    let p = &params.dim_params[j - 1];
    let s = p.m.len();
    for k in 0..32 {
        v[k] = if k < s {
            p.m[k] << (31 - k)
        } else {
            let mut x = v[k - s] ^ (v[k - s] >> s);
            for i in 1..s {
                if (p.a >> (s - 1 - i)) & 1 == 1 {
                    x ^= v[k - i];
                }
            }
            x
        };
    }
    v
}

/// The 32 binary digits of point `i` in one dimension (natural order: the
/// XOR of the direction numbers of i's set bits).
fn sobol_digits(v: &[u32; 32], i: u32) -> u32 {
    let mut x = 0;
    let mut bits = i;
    let mut k = 0;
    while bits != 0 {
        if bits & 1 == 1 {
            x ^= v[k];
        }
        bits >>= 1;
        k += 1;
    }
    x
}

/// Owen's nested uniform scrambling of 32 digits: digit d is flipped or
/// not by a keyed hash of the digits above it, so points that share their
/// first d digits are permuted alike (the net's strata are kept).
fn owen_scramble(x: u32, key: u64) -> u32 {
    let mut out = 0;
    for d in 0..32u32 {
        let bit = 31 - d;
        let above = u64::from(x.checked_shr(bit + 1).unwrap_or(0));
        let flip = (mix(key ^ (u64::from(d) << 40) ^ above) >> 63) as u32;
        out |= (((x >> bit) & 1) ^ flip) << bit;
    }
    out
}

/// SplitMix64's finaliser: a keyed round function with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One grid axis as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Axis {
    Values(Vec<f64>),
    Linspace { first: f64, last: f64, count: u64 },
    Logspace { first: f64, last: f64, count: u64 },
}

/// Points along one axis at most.
const MAX_AXIS: u64 = 1 << 32;

impl Axis {
    /// `{ values = [...] }`, `{ linspace = [first, last, count] }` or
    /// `{ logspace = [first, last, count] }` (count points from first to
    /// last, both included; logspace evenly in the logarithm).
    pub fn parse(value: &toml::Value) -> Result<Self, String> {
        let form = "expected { values = [...] }, { linspace = [first, last, count] } or \
                    { logspace = [first, last, count] }";
        let table = value.as_table().filter(|t| t.len() == 1).ok_or(form)?;
        let (key, v) = table.iter().next().expect("one key");
        let numbers: Vec<f64> = v
            .as_array()
            .ok_or(form)?
            .iter()
            .map(|x| x.as_float().or(x.as_integer().map(|i| i as f64)))
            .collect::<Option<_>>()
            .ok_or("expected numbers")?;
        if let Some(bad) = numbers.iter().find(|x| !x.is_finite()) {
            return Err(format!("{bad} is not a finite number"));
        }
        let triple = || -> Result<(f64, f64, u64), String> {
            match numbers[..] {
                [first, last, count]
                    if count >= 1.0 && count.fract() == 0.0 && count <= MAX_AXIS as f64 =>
                {
                    Ok((first, last, count as u64))
                }
                [_, _, count] => Err(format!(
                    "{key}: the count {count} must be a whole number from 1 to {MAX_AXIS}"
                )),
                _ => Err(format!("{key} = [first, last, count]")),
            }
        };
        match key.as_str() {
            "values" if numbers.is_empty() => Err("values: expected at least one".into()),
            "values" => Ok(Axis::Values(numbers)),
            "linspace" => {
                let (first, last, count) = triple()?;
                Ok(Axis::Linspace { first, last, count })
            }
            "logspace" => {
                let (first, last, count) = triple()?;
                if first <= 0.0 || last <= 0.0 {
                    return Err("logspace: first and last must be positive".into());
                }
                Ok(Axis::Logspace { first, last, count })
            }
            other => Err(format!("`{other}`: {form}")),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Axis::Values(v) => v.len() as u64,
            Axis::Linspace { count, .. } | Axis::Logspace { count, .. } => *count,
        }
    }

    /// The points, first to last.
    pub fn values(&self) -> Vec<f64> {
        let spaced = |first: f64, last: f64, count: u64| -> Vec<f64> {
            if count == 1 {
                return vec![first];
            }
            let step = (last - first) / (count - 1) as f64;
            (0..count)
                .map(|k| if k + 1 == count { last } else { first + step * k as f64 })
                .collect()
        };
        match self {
            Axis::Values(v) => v.clone(),
            Axis::Linspace { first, last, count } => spaced(*first, *last, *count),
            Axis::Logspace { first, last, count } => {
                let mut v: Vec<f64> = spaced(first.ln(), last.ln(), *count)
                    .into_iter()
                    .map(f64::exp)
                    .collect();
                // Exactly the ends as written.
                v[0] = *first;
                if let Some(l) = v.last_mut() {
                    *l = *last;
                }
                v
            }
        }
    }
}

/// A CSV design file: its header, rows and a checksum of its bytes, so that
/// a file changed after the spec was checked is refused rather than read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignFile {
    pub path: PathBuf,
    /// The dataset, for an HDF5 file.
    pub dataset: Option<String>,
    /// The columns' names (empty: an HDF5 dataset without names, whose
    /// columns are the parameters in order).
    pub columns: Vec<String>,
    /// Values per row.
    pub width: usize,
    pub rows: u64,
    pub checksum: u64,
}

impl DesignFile {
    /// Reads the design once to check it: a CSV (a header, then rows of
    /// numbers), or `dataset` of an HDF5 file.
    pub fn read(path: &Path, dataset: Option<&str>) -> Result<Self, String> {
        let table = match dataset {
            Some(d) => parse_hdf5(path, d)?,
            None => parse_csv(path)?,
        };
        let rows = table.values.len().checked_div(table.width).unwrap_or(0) as u64;
        if rows == 0 {
            return Err(format!("design file {}: no rows", path.display()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            dataset: dataset.map(str::to_string),
            columns: table.columns,
            width: table.width,
            rows,
            checksum: table.checksum,
        })
    }

    /// Where each of `params` is among the columns.
    pub fn columns_for(&self, params: &[String]) -> Result<Vec<usize>, String> {
        if self.columns.is_empty() {
            // Unnamed columns: the parameters, in order.
            if self.width != params.len() {
                return Err(format!(
                    "dataset {} of {} has {} columns and no `params` attribute naming them, \
                     for a state of {} parameters",
                    self.dataset.as_deref().unwrap_or(""),
                    self.path.display(),
                    self.width,
                    params.len()
                ));
            }
            return Ok((0..params.len()).collect());
        }
        params
            .iter()
            .map(|p| {
                self.columns.iter().position(|c| c == p).ok_or_else(|| {
                    format!(
                        "design file {} has no column `{p}` (its header: {})",
                        self.path.display(),
                        self.columns.join(", ")
                    )
                })
            })
            .collect()
    }

    /// The values of `params` in every row, row-major.
    pub fn load(&self, params: &[String]) -> Result<Vec<f64>, String> {
        let table = match &self.dataset {
            Some(d) => parse_hdf5(&self.path, d)?,
            None => parse_csv(&self.path)?,
        };
        if table.checksum != self.checksum || table.columns != self.columns {
            return Err(format!(
                "design file {} changed since the spec was checked",
                self.path.display()
            ));
        }
        let at = self.columns_for(params)?;
        Ok(table
            .values
            .chunks_exact(table.width)
            .flat_map(|row| at.iter().map(move |&c| row[c]))
            .collect())
    }
}

/// A design file's contents: column names (if any), numbers row-major, and
/// a checksum of the file's bytes.
struct DesignTable {
    columns: Vec<String>,
    width: usize,
    values: Vec<f64>,
    checksum: u64,
}

/// FNV-1a of a file's bytes.
fn checksum_of(path: &Path) -> Result<u64, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("design file {}: cannot read it: {e}", path.display()))?;
    Ok(bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// `dataset` of an HDF5 file: rows × columns of numbers, its columns named
/// by its `params` attribute if it has one.
fn parse_hdf5(path: &Path, dataset: &str) -> Result<DesignTable, String> {
    use crate::output::{Attr, Hdf5Reader, Reader};
    let shown = path.display();
    let checksum = checksum_of(path)?;
    let file = Hdf5Reader::open(path).map_err(|e| format!("design file {shown}: {e}"))?;
    let shape = file
        .shape(dataset)
        .map_err(|e| format!("design file {shown}: dataset {dataset}: {e}"))?;
    let [_, width] = shape[..] else {
        return Err(format!(
            "design file {shown}: dataset {dataset} has shape {shape:?}: expected rows × parameters"
        ));
    };
    let columns = match file.attr(dataset, "params").map_err(|e| e.to_string())? {
        Some(Attr::Strs(names)) if names.len() == width => names,
        Some(_) => {
            return Err(format!(
                "design file {shown}: dataset {dataset}'s `params` attribute does not name its \
                 {width} columns"
            ))
        }
        None => Vec::new(),
    };
    let values = file
        .read_f64(dataset, None, None)
        .map_err(|e| format!("design file {shown}: dataset {dataset}: {e}"))?;
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "design file {shown}, dataset {dataset}: row {} holds {}, not a finite number",
            bad / width.max(1),
            values[bad]
        ));
    }
    Ok(DesignTable {
        columns,
        width,
        values,
        checksum,
    })
}

/// A CSV's header, its numbers row-major, and a checksum of its bytes.
fn parse_csv(path: &Path) -> Result<DesignTable, String> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| format!("design file {shown}: cannot read it: {e}"))?;
    let checksum = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(&bytes[..]);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| format!("design file {shown}: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut values = Vec::new();
    for (r, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("design file {shown}: {e}"))?;
        for (c, field) in record.iter().enumerate() {
            let v: f64 = field.parse().map_err(|_| {
                format!(
                    "design file {shown}, row {} column `{}`: {field:?} is not a number",
                    r + 1,
                    columns.get(c).map_or("?", String::as_str)
                )
            })?;
            if !v.is_finite() {
                return Err(format!(
                    "design file {shown}, row {}: {field} is not a finite number",
                    r + 1
                ));
            }
            values.push(v);
        }
    }
    Ok(DesignTable {
        width: columns.len(),
        columns,
        values,
        checksum,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyed_permutation_is_a_bijection_for_any_size() {
        for n in [1u64, 2, 3, 7, 64, 1000, 4097] {
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let j = permute(i, n, 0x1234_5678);
                assert!(j < n);
                assert!(!seen[j as usize], "n = {n}: {j} twice");
                seen[j as usize] = true;
            }
        }
        // Another key, another order.
        let a: Vec<u64> = (0..100).map(|i| permute(i, 100, 1)).collect();
        let b: Vec<u64> = (0..100).map(|i| permute(i, 100, 2)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn scrambled_sobol_points_are_a_net_in_every_pair_of_parameters() {
        // 2⁶ points in 3 parameters on the unit cube: in every pair of the
        // first two and in each one alone, every elementary box of volume
        // 2⁻⁶ holds exactly one point (a (0, 6, 2)-net, which Owen's
        // scrambling keeps).
        let design = Design::Sobol;
        let state = StateSpec {
            name: "s".into(),
            params: vec!["a".into(), "b".into(), "c".into()],
        };
        let prior = Prior::from_spec(&crate::model::PriorSpec::Uniform {
            low: vec![0.0; 3],
            high: vec![1.0; 3],
        })
        .unwrap();
        let n = 64u64;
        let points = Points::new(&design, &state, Some(&prior), n, StreamKey::of_seed(3)).unwrap();
        let xs: Vec<[f64; 3]> = (0..n)
            .map(|i| {
                let mut x = [0.0; 3];
                points.point(i, &mut x);
                x
            })
            .collect();
        for a in 0..=6u32 {
            let b = 6 - a;
            let mut seen = vec![0u32; 64];
            for x in &xs {
                let (i, j) = ((x[0] * f64::from(1 << a)) as usize, (x[1] * f64::from(1 << b)) as usize);
                seen[(i << b) | j] += 1;
            }
            assert!(seen.iter().all(|&c| c == 1), "boxes 2^-{a} × 2^-{b}: {seen:?}");
        }
        for j in 0..3 {
            let mut strata: Vec<usize> = xs.iter().map(|x| (x[j] * 64.0) as usize).collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..64).collect::<Vec<_>>(), "parameter {j}");
        }
        // Another seed scrambles otherwise.
        let other = Points::new(&design, &state, Some(&prior), n, StreamKey::of_seed(4)).unwrap();
        let mut y = [0.0; 3];
        other.point(5, &mut y);
        assert_ne!(y, xs[5]);
        // Unscrambled, the first dimension is van der Corput's.
        let v = directions(&sobol::params::JoeKuoD6::standard(), 0);
        assert_eq!(sobol_digits(&v, 1), 1 << 31);
        assert_eq!(sobol_digits(&v, 3), 3 << 30);
    }

    #[test]
    fn axes_are_spaced_and_end_where_written() {
        let lin = Axis::parse(&toml::from_str::<toml::Value>("linspace = [0, 1, 5]").unwrap())
            .unwrap();
        assert_eq!(lin.values(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let log = Axis::parse(&toml::from_str::<toml::Value>("logspace = [1, 1000, 4]").unwrap())
            .unwrap();
        let v = log.values();
        assert_eq!((v[0], v[3]), (1.0, 1000.0));
        assert!((v[1] - 10.0).abs() < 1e-12 && (v[2] - 100.0).abs() < 1e-12);
        for bad in ["linspace = [0, 1]", "logspace = [0, 1, 3]", "steps = [1]", "values = []"] {
            let v = toml::from_str::<toml::Value>(bad).unwrap();
            assert!(Axis::parse(&v).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_grid_runs_in_c_order_the_last_parameter_fastest() {
        let design = Design::Grid {
            axes: vec![
                ("b".into(), Axis::Values(vec![10.0, 20.0, 30.0])),
                ("a".into(), Axis::Values(vec![1.0, 2.0])),
            ],
        };
        let state = StateSpec {
            name: "s".into(),
            params: vec!["a".into(), "b".into()],
        };
        let p = Points::new(&design, &state, None, 6, StreamKey::of_seed(1)).unwrap();
        let mut x = [0.0; 2];
        let all: Vec<[f64; 2]> = (0..6)
            .map(|i| {
                p.point(i, &mut x);
                x
            })
            .collect();
        assert_eq!(
            all,
            vec![[1., 10.], [1., 20.], [1., 30.], [2., 10.], [2., 20.], [2., 30.]]
        );
    }
}
