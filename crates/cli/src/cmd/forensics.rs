//! `ultracore forensics …`: explain tree-model predictions with SHAP values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::ser::{Serialize, SerializeMap, Serializer};
use ultracore_models::{FastTreeShap, Model, TreeShap};

#[derive(Debug, Subcommand)]
pub enum ForensicsCommand {
    /// SHAP values of an XGBoost model's predictions on rows of a CSV file.
    ///
    /// The model is any single-output XGBoost model saved with
    /// `save_model("model.json")` (binary:logistic or reg:squarederror). The
    /// CSV header names the model's features (any order, every feature once);
    /// an empty cell or NaN is a missing value and follows each split's
    /// default direction, as in XGBoost. Values are path-dependent TreeSHAP
    /// in margin units (log-odds for binary:logistic), as shap's
    /// TreeExplainer computes by default: for every row they add up with the
    /// expected value to the margin.
    ///
    /// Example: ultracore forensics explain --model models/bull.json --rows sample-data/decision_rows.csv --json
    Explain(ExplainArgs),
    /// The stored explanation of one trading decision (written by
    /// `ultracore service forensics`): the words, then each specialist's and
    /// the ensemble's margin and strongest features.
    ///
    /// Example: ultracore forensics show 0190f7a2-0000-7000-8000-000000000001 --json
    Show(super::forensics_service::ShowArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    /// Fast TreeSHAP v2: per-tree tables, the per-row hot path.
    Fast,
    /// Lundberg's recursive algorithm.
    Exact,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The model, as written by XGBoost's `save_model("model.json")`.
    #[arg(long, env = "ULTRACORE_FORENSICS_MODEL", value_name = "MODEL.json")]
    model: PathBuf,
    /// The rows to explain: a CSV file whose header names the features.
    #[arg(long, value_name = "ROWS.csv")]
    rows: PathBuf,
    /// Print `{expected_value, rows: [{margin, prediction, shap: {feature: value}}]}`.
    #[arg(long)]
    json: bool,
    /// Features listed per direction in the table.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Both give the same values (to 1e-9); `exact` is the reference.
    #[arg(long, value_enum, default_value = "fast")]
    algorithm: Algorithm,
}

pub fn run(log: &crate::LogArgs, command: ForensicsCommand) -> Result<()> {
    match command {
        ForensicsCommand::Explain(args) => explain(args),
        ForensicsCommand::Show(args) => super::forensics_service::show(log, args),
    }
}

/// One explained row.
struct Explained {
    margin: f64,
    prediction: f32,
    shap: Vec<f64>,
}

fn explain(args: ExplainArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let rows = read_rows(&args.rows, model.feature_names())?;
    let explained = explain_rows(&model, &rows, args.algorithm)?;
    if args.json {
        let out = JsonOut {
            model: &args.model,
            model_info: &model,
            rows: &explained,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print!(
        "{}",
        render_table(&model, &args.model, &explained, args.top)
    );
    Ok(())
}

fn explain_rows(model: &Model, rows: &[Vec<f32>], algorithm: Algorithm) -> Result<Vec<Explained>> {
    let n = model.num_features();
    let mut out = Vec::with_capacity(rows.len());
    match algorithm {
        Algorithm::Fast => {
            let explainer = FastTreeShap::new(model);
            let mut ws = explainer.workspace();
            for row in rows {
                let mut shap = vec![0.0; n];
                let margin = explainer.shap_values(row, &mut ws, &mut shap)?;
                out.push(Explained {
                    margin,
                    prediction: model.predict(row)?,
                    shap,
                });
            }
        }
        Algorithm::Exact => {
            let explainer = TreeShap::new(model);
            let mut ws = explainer.workspace();
            for row in rows {
                let mut shap = vec![0.0; n];
                let margin = explainer.shap_values(row, &mut ws, &mut shap)?;
                out.push(Explained {
                    margin,
                    prediction: model.predict(row)?,
                    shap,
                });
            }
        }
    }
    Ok(out)
}

/// Loads a model; errors name the file.
pub fn load_model(path: &Path) -> Result<Model> {
    Model::load(path).map_err(|e| match e {
        ultracore_models::Error::Io { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("model {}", path.display())),
    })
}

/// Reads a CSV of feature rows into the model's feature order: float32,
/// NaN for empty or `NaN` cells.
pub fn read_rows(path: &Path, features: &[String]) -> Result<Vec<Vec<f32>>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read rows file {}", path.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header", path.display()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let index: HashMap<&str, usize> = features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i))
        .collect();
    let mut column_feature = Vec::with_capacity(header.len());
    let mut seen = vec![false; features.len()];
    let mut unknown = Vec::new();
    for name in &header {
        match index.get(name.as_str()) {
            Some(&i) if seen[i] => bail!("{}: column {name:?} appears twice", path.display()),
            Some(&i) => {
                seen[i] = true;
                column_feature.push(i);
            }
            None => unknown.push(name.as_str()),
        }
    }
    if !unknown.is_empty() {
        bail!(
            "{}: unknown feature column(s) {} (the model's features: {})",
            path.display(),
            quoted(unknown.iter().copied()),
            features.join(", ")
        );
    }
    let absent: Vec<&str> = features
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(f, _)| f.as_str())
        .collect();
    if !absent.is_empty() {
        bail!(
            "{}: no column for feature(s) {} (add the column with empty cells to mark values missing)",
            path.display(),
            quoted(absent.iter().copied())
        );
    }

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: malformed CSV", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            bail!(
                "{} line {line}: {} cells, the header has {}",
                path.display(),
                record.len(),
                header.len()
            );
        }
        let mut row = vec![f32::NAN; features.len()];
        for (cell, &feature) in record.iter().zip(&column_feature) {
            row[feature] = parse_cell(cell).with_context(|| {
                format!(
                    "{} line {line}, column {}: {cell:?} is not a number (leave the cell empty or write NaN for a missing value)",
                    path.display(),
                    features[feature]
                )
            })?;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A cell as XGBoost would see it from pandas: the nearest double, then float32.
fn parse_cell(cell: &str) -> Result<f32> {
    if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
        return Ok(f32::NAN);
    }
    let v: f64 = cell.parse()?;
    Ok(v as f32)
}

fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

struct JsonOut<'a> {
    model: &'a Path,
    model_info: &'a Model,
    rows: &'a [Explained],
}

impl Serialize for JsonOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("model", &self.model.display().to_string())?;
        map.serialize_entry("objective", self.model_info.objective().name())?;
        map.serialize_entry("expected_value", &self.model_info.expected_value())?;
        map.serialize_entry("feature_names", self.model_info.feature_names())?;
        let rows: Vec<JsonRow> = self
            .rows
            .iter()
            .map(|r| JsonRow {
                features: self.model_info.feature_names(),
                row: r,
            })
            .collect();
        map.serialize_entry("rows", &rows)?;
        map.end()
    }
}

/// A row; `shap` keeps the model's feature order.
struct JsonRow<'a> {
    features: &'a [String],
    row: &'a Explained,
}

struct FeatureMap<'a>(&'a [String], &'a [f64]);

impl Serialize for FeatureMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0.iter().zip(self.1) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl Serialize for JsonRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("margin", &self.row.margin)?;
        map.serialize_entry("prediction", &self.row.prediction)?;
        map.serialize_entry("shap", &FeatureMap(self.features, &self.row.shap))?;
        map.end()
    }
}

fn render_table(model: &Model, path: &Path, rows: &[Explained], top: usize) -> String {
    let names = model.feature_names();
    let strongest = |shap: &[f64], positive: bool| -> String {
        let mut idx: Vec<usize> = (0..shap.len())
            .filter(|&i| {
                if positive {
                    shap[i] > 0.0
                } else {
                    shap[i] < 0.0
                }
            })
            .collect();
        idx.sort_by(|&a, &b| shap[b].abs().total_cmp(&shap[a].abs()));
        idx.iter()
            .take(top)
            .map(|&i| format!("{} {:+.4}", names[i], shap[i]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                (i + 1).to_string(),
                format!("{:.6}", r.prediction),
                format!("{:.6}", r.margin),
                strongest(&r.shap, true),
                strongest(&r.shap, false),
            ]
        })
        .collect();
    format!(
        "model {} ({}, {} trees, {} features); expected value {:.6} ({} units)\n{}",
        path.display(),
        model.objective(),
        model.num_trees(),
        model.num_features(),
        model.expected_value(),
        match model.objective() {
            ultracore_models::Objective::BinaryLogistic => "log-odds",
            ultracore_models::Objective::SquaredError => "prediction",
        },
        crate::output::table(
            &[
                ">row",
                ">prediction",
                ">margin",
                "pushing up",
                "pushing down"
            ],
            &table
        )
    )
}
