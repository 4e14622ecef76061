//! Polynomial regression with Gaussian noise: y = Σ_k c_k x^k + N(0, σ²).
//! The likelihood is the normalised density of the observed y given the
//! coefficients (c_0 … c_order), constants included.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{BuildError, EvalError, LogDensity};

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Observations (x_i, y_i), read once from a CSV file with a header naming
/// the columns `x` and `y` (other columns are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionData {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

impl RegressionData {
    /// Reads the CSV file; the error says which row or column is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_path(path)
            .map_err(|e| format!("cannot read data file {}: {e}", path.display()))?;
        let headers = reader
            .headers()
            .map_err(|e| format!("{}: cannot read the header: {e}", path.display()))?
            .clone();
        let column = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                format!(
                    "{}: no column `{name}` in the header (found: {})",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
        };
        let (ix, iy) = (column("x")?, column("y")?);
        let mut data = Self {
            x: Vec::new(),
            y: Vec::new(),
        };
        for (row, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
            // Row numbers as a user sees them in an editor: the header is line 1.
            let line = record.position().map_or(row + 2, |p| p.line() as usize);
            let field = |i: usize, name: &str| -> Result<f64, String> {
                let text = record.get(i).unwrap_or("");
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        format!(
                            "{}:{line}: column `{name}`: expected a finite number, found `{text}`",
                            path.display()
                        )
                    })
            };
            data.x.push(field(ix, "x")?);
            data.y.push(field(iy, "y")?);
        }
        if data.x.is_empty() {
            return Err(format!("{}: no data rows", path.display()));
        }
        Ok(data)
    }
}

#[derive(Debug, Clone)]
pub struct PolynomialRegression {
    data: RegressionData,
    order: usize,
    inv_var: f64,
    log_norm: f64,
}

impl PolynomialRegression {
    pub fn new(data: RegressionData, order: usize, noise_sd: f64) -> Result<Self, BuildError> {
        if !(noise_sd.is_finite() && noise_sd > 0.0) {
            return Err(BuildError::new(
                "noise_sd",
                "must be a positive finite number",
            ));
        }
        let n = data.x.len() as f64;
        Ok(Self {
            log_norm: -n * (noise_sd.ln() + LN_SQRT_2PI),
            inv_var: 1.0 / (noise_sd * noise_sd),
            data,
            order,
        })
    }
}

impl LogDensity for PolynomialRegression {
    fn dim(&self) -> usize {
        self.order + 1
    }
    fn log_density(&self, c: &[f64]) -> Result<f64, EvalError> {
        let mut ss = 0.0;
        for (&x, &y) in self.data.x.iter().zip(&self.data.y) {
            // Horner's rule, highest power first.
            let fit = c.iter().rev().fold(0.0, |acc, &ck| acc * x + ck);
            ss += (y - fit).powi(2);
        }
        Ok(self.log_norm - 0.5 * ss * self.inv_var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::quadrature::integrate;

    #[test]
    fn likelihood_is_a_normalised_density_of_y() {
        // One observation at x = 2 under y = 1 + 0.5 x: integrate over y.
        let mass = integrate(-20.0, 24.0, 200_000, |y| {
            let data = RegressionData {
                x: vec![2.0],
                y: vec![y],
            };
            let m = PolynomialRegression::new(data, 1, 1.5).unwrap();
            m.log_density(&[1.0, 0.5]).unwrap().exp()
        });
        assert!((mass - 1.0).abs() < 1e-9, "{mass}");
    }

    #[test]
    fn loads_csv_and_reports_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "x,y\n0,1\n1, 2.5\n# comment\n2,4\n").unwrap();
        let data = RegressionData::load(&good).unwrap();
        assert_eq!(data.x, vec![0.0, 1.0, 2.0]);
        assert_eq!(data.y, vec![1.0, 2.5, 4.0]);

        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "x,y\n0,1\n1,oops\n").unwrap();
        let e = RegressionData::load(&bad).unwrap_err();
        assert!(e.contains(":3: column `y`") && e.contains("oops"), "{e}");

        let nocol = dir.path().join("nocol.csv");
        std::fs::write(&nocol, "a,y\n0,1\n").unwrap();
        assert!(RegressionData::load(&nocol)
            .unwrap_err()
            .contains("no column `x`"));

        let e = RegressionData::load(&dir.path().join("missing.csv")).unwrap_err();
        assert!(e.contains("cannot read data file"), "{e}");
    }
}
