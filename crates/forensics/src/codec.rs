//! The store's binary forms: a decision, and the SHAP values of its
//! specialists. About a third of the JSON's size, so the writer moves a
//! third of the bytes (at 100,000 decisions/s the store's write rate is
//! what the disk allows, not what SQLite does).
//!
//! # Decision (formats 1 and 2)
//!
//! ```text
//! u8 format (1: no latency, 2: with latency)
//! str decision_id · i64 seconds · u32 nanoseconds · str symbol · u8 action (0 BUY, 1 SELL, 2 HOLD)
//! f64 quantity · f64 confidence
//! [varint latency_us]                                    (format 2 only)
//! pairs regime_probs · pairs strategy_weights
//! features: varint n (the model set's features) · n bits (present, feature i in bit i % 8 of byte i / 8)
//!           · f64 per present feature, in model order · pairs of the other features
//! varint risk checks · per check: str name · u8 passed · f64 value · f64 limit · u8 has detail · [str detail]
//! str model_version
//! ```
//!
//! `str` is a varint length and UTF-8 bytes, `pairs` a varint count and
//! `str f64` per entry, `f64` little-endian IEEE 754 (bit-exact), varints
//! LEB128. Decoding gives the decision back equal to the one published
//! (the same [`TradingDecision`], so the same JSON).
//!
//! The format byte says whether the decision's `latency_us` is there: a
//! decision without one is written in format 1, byte for byte as before
//! the field existed, so every blob stored before reads as it did (a test
//! pins such a blob), and one with a latency costs a varint (one to three
//! bytes below two seconds).
//! The latency sits right after the confidence so that [`decision_head`]
//! reads it without walking the rest.
//!
//! # SHAP values (format 2)
//!
//! `u8 2 · u8 specialists · u16 features (LE)`, then per specialist its
//! margin, its expected value and one SHAP value per feature (f64 LE). The
//! ensemble, the row and the weights are not stored: they follow from the
//! decision and these values, computed on read exactly as when explaining
//! (see [`crate::Explanation`]). Format 1 (everything, written before the
//! store's schema 2) is still read by [`crate::store::decode_values`].

use chrono::DateTime;
use ultracore_events::trading::{Action, RiskCheck, TradingDecision};

use crate::decode::{DecisionView, Pairs};

/// Format tag of a binary decision without a latency (every decision
/// stored before decisions carried one).
pub const DECISION_FORMAT: u8 = 1;
/// Format tag of a binary decision with its `latency_us`.
pub const TIMED_DECISION_FORMAT: u8 = 2;
/// Format tag of the specialists-only SHAP values.
pub const SHAP_FORMAT: u8 = 2;

/// Feature names with their row index, sorted by name for lookups.
#[derive(Debug, Clone)]
pub struct FeatureIndex {
    sorted: Vec<(String, usize)>,
    names: Vec<String>,
}

impl FeatureIndex {
    pub fn new(names: &[String]) -> Self {
        let mut sorted: Vec<(String, usize)> = names.iter().cloned().zip(0..).collect();
        sorted.sort();
        FeatureIndex {
            sorted,
            names: names.to_vec(),
        }
    }

    /// The name of feature `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Places each feature of `features` in `present` (one slot per model
    /// feature, in row order; a name given twice keeps its last value) and
    /// returns how many name no model feature.
    ///
    /// Decisions list their features sorted by name, as this index is, so
    /// the next feature is looked for where the last one was found before
    /// searching: one comparison per feature instead of a search.
    pub fn place(&self, features: &Pairs<'_>, present: &mut Vec<Option<f64>>) -> usize {
        present.clear();
        present.resize(self.sorted.len(), None);
        let mut cursor = 0usize;
        let mut others = 0usize;
        for (k, v) in &features.0 {
            let hit = match self.sorted.get(cursor) {
                Some((name, i)) if name.as_str() == &**k => {
                    cursor += 1;
                    Some(*i)
                }
                _ => match self
                    .sorted
                    .binary_search_by(|(name, _)| name.as_str().cmp(k))
                {
                    Ok(pos) => {
                        cursor = pos + 1;
                        Some(self.sorted[pos].1)
                    }
                    Err(pos) => {
                        cursor = pos;
                        None
                    }
                },
            };
            match hit {
                Some(i) => present[i] = Some(*v),
                None => others += 1,
            }
        }
        others
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The row index of `name`.
    #[inline]
    pub fn find(&self, name: &str) -> Option<usize> {
        self.sorted
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.sorted[i].1)
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn text(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn f64le(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn pairs(out: &mut Vec<u8>, p: &Pairs<'_>) {
    varint(out, p.0.len() as u64);
    for (k, v) in &p.0 {
        text(out, k);
        f64le(out, *v);
    }
}

fn action_code(a: Action) -> u8 {
    match a {
        Action::Buy => 0,
        Action::Sell => 1,
        Action::Hold => 2,
    }
}

/// Appends the binary form of `d` to `out`. `present` is scratch space.
pub fn encode_decision(
    d: &DecisionView<'_>,
    index: &FeatureIndex,
    present: &mut Vec<Option<f64>>,
    out: &mut Vec<u8>,
) {
    let others = index.place(&d.features, present);
    encode_placed(d, index, present, others, out);
}

/// [`encode_decision`] with the features already placed by
/// [`FeatureIndex::place`] (`others`: what it returned).
pub(crate) fn encode_placed(
    d: &DecisionView<'_>,
    index: &FeatureIndex,
    present: &[Option<f64>],
    others: usize,
    out: &mut Vec<u8>,
) {
    out.push(match d.latency_us {
        None => DECISION_FORMAT,
        Some(_) => TIMED_DECISION_FORMAT,
    });
    text(out, &d.decision_id);
    out.extend_from_slice(&d.timestamp.timestamp().to_le_bytes());
    out.extend_from_slice(&d.timestamp.timestamp_subsec_nanos().to_le_bytes());
    text(out, &d.symbol);
    out.push(action_code(d.action));
    f64le(out, d.quantity);
    f64le(out, d.confidence);
    if let Some(latency) = d.latency_us {
        varint(out, latency);
    }
    pairs(out, &d.regime_probs);
    pairs(out, &d.strategy_weights);

    let n = index.len();
    varint(out, n as u64);
    let bits = out.len();
    out.resize(bits + n.div_ceil(8), 0);
    for (i, v) in present.iter().enumerate() {
        if let Some(v) = v {
            out[bits + i / 8] |= 1 << (i % 8);
            f64le(out, *v);
        }
    }
    varint(out, others as u64);
    if others > 0 {
        for (k, v) in d.features.0.iter().filter(|(k, _)| index.find(k).is_none()) {
            text(out, k);
            f64le(out, *v);
        }
    }

    varint(out, d.risk_checks.len() as u64);
    for c in &d.risk_checks {
        text(out, &c.name);
        out.push(u8::from(c.passed));
        f64le(out, c.value);
        f64le(out, c.limit);
        match &c.detail {
            Some(detail) => {
                out.push(1);
                text(out, detail);
            }
            None => out.push(0),
        }
    }
    text(out, &d.model_version);
}

/// Reads the binary forms back; errors say where they are broken.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("truncated at byte {} reading {what}", self.at));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8(what)?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(format!("an overlong varint reading {what}"))
    }

    fn len(&mut self, what: &str) -> Result<usize, String> {
        let n = self.varint(what)?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.at.min(self.bytes.len()))
            .ok_or_else(|| format!("{what}: a length of {n} past the end"))
    }

    fn f64(&mut self, what: &str) -> Result<f64, String> {
        Ok(f64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }

    fn text(&mut self, what: &str) -> Result<String, String> {
        let n = self.len(what)?;
        String::from_utf8(self.take(n, what)?.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }

    /// The format byte of a decision: whether it carries a latency.
    fn format(&mut self) -> Result<bool, String> {
        match self.u8("the format")? {
            DECISION_FORMAT => Ok(false),
            TIMED_DECISION_FORMAT => Ok(true),
            other => Err(format!("unknown decision format {other}")),
        }
    }

    /// The latency after the confidence, in a decision that carries one.
    fn latency(&mut self, timed: bool) -> Result<Option<u64>, String> {
        timed.then(|| self.varint("latency_us")).transpose()
    }

    fn pairs(&mut self, what: &str) -> Result<std::collections::BTreeMap<String, f64>, String> {
        let n = self.len(what)?;
        let mut out = std::collections::BTreeMap::new();
        for _ in 0..n {
            let k = self.text(what)?;
            let v = self.f64(what)?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// The decision encoded by [`encode_decision`] with the model set whose
/// feature names (in row order) are `features`.
pub fn decode_decision(bytes: &[u8], features: &[String]) -> Result<TradingDecision, String> {
    let mut r = Reader { bytes, at: 0 };
    let timed = r.format()?;
    let decision_id = r.text("decision_id")?;
    let secs = i64::from_le_bytes(r.take(8, "timestamp")?.try_into().expect("8 bytes"));
    let nanos = u32::from_le_bytes(r.take(4, "timestamp")?.try_into().expect("4 bytes"));
    let timestamp = DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| format!("timestamp {secs}.{nanos:09} is out of range"))?;
    let symbol = r.text("symbol")?;
    let action = match r.u8("action")? {
        0 => Action::Buy,
        1 => Action::Sell,
        2 => Action::Hold,
        other => return Err(format!("unknown action code {other}")),
    };
    let quantity = r.f64("quantity")?;
    let confidence = r.f64("confidence")?;
    let latency_us = r.latency(timed)?;
    let regime_probs = r.pairs("regime_probs")?;
    let strategy_weights = r.pairs("strategy_weights")?;

    let n = r.len("the feature count")?;
    if n != features.len() {
        return Err(format!(
            "encoded with {n} model features, the model set has {}",
            features.len()
        ));
    }
    let bits = r.take(n.div_ceil(8), "the feature bits")?;
    let mut feature_map = std::collections::BTreeMap::new();
    for (i, name) in features.iter().enumerate() {
        if bits[i / 8] >> (i % 8) & 1 == 1 {
            feature_map.insert(name.clone(), r.f64("features")?);
        }
    }
    let others = r.len("the other features")?;
    for _ in 0..others {
        let k = r.text("features")?;
        let v = r.f64("features")?;
        feature_map.insert(k, v);
    }

    let checks = r.len("risk_checks")?;
    let mut risk_checks = Vec::with_capacity(checks.min(64));
    for _ in 0..checks {
        let name = r.text("risk_checks.name")?;
        let passed = r.u8("risk_checks.passed")? != 0;
        let value = r.f64("risk_checks.value")?;
        let limit = r.f64("risk_checks.limit")?;
        let detail = match r.u8("risk_checks.detail")? {
            0 => None,
            _ => Some(r.text("risk_checks.detail")?),
        };
        risk_checks.push(RiskCheck {
            name,
            passed,
            value,
            limit,
            detail,
        });
    }
    let model_version = r.text("model_version")?;
    if r.at != bytes.len() {
        return Err(format!(
            "{} bytes left over after the decision",
            bytes.len() - r.at
        ));
    }
    Ok(TradingDecision {
        decision_id,
        timestamp,
        symbol,
        action,
        quantity,
        confidence,
        regime_probs,
        strategy_weights,
        features: feature_map,
        risk_checks,
        model_version,
        latency_us,
    })
}

/// What the store keeps in columns of a decision, for filtering and
/// statistics without decoding the whole decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionHead {
    pub confidence: f64,
    /// See [`dominant_regime`]; `None` when the decision gives no regime.
    pub dominant_regime: Option<String>,
    /// `None` when the decision does not carry it (format 1).
    pub latency_us: Option<u64>,
}

impl DecisionHead {
    /// The head of a decision already decoded: what [`decision_head`]
    /// reads back from its binary form ([`encode_decision`] writes the
    /// regimes in the view's order), without the reading. The service's
    /// workers have the view; the store's one writer then binds it.
    pub fn of_view(d: &DecisionView<'_>) -> DecisionHead {
        let probs: Vec<(&str, f64)> = d.regime_probs.0.iter().map(|(k, v)| (&**k, *v)).collect();
        head(d.confidence, d.latency_us, probs)
    }
}

/// The head from the fields read: a regime named twice counts with its
/// last value, as decoding into the decision's map does.
fn head(confidence: f64, latency_us: Option<u64>, probs: Vec<(&str, f64)>) -> DecisionHead {
    let last = |i: usize, name: &str| !probs[i + 1..].iter().any(|(n, _)| *n == name);
    let probs = (0..probs.len())
        .filter(|&i| last(i, probs[i].0))
        .map(|i| probs[i]);
    DecisionHead {
        confidence,
        dominant_regime: dominant_regime(probs).map(str::to_owned),
        latency_us,
    }
}

/// The most probable regime of `probs`: the highest probability, a tie
/// going to the name that sorts first (the order the narrative ranks
/// regimes in, so the listing and the words agree). NaN never wins.
pub(crate) fn dominant_regime<'a>(
    probs: impl IntoIterator<Item = (&'a str, f64)>,
) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for (name, p) in probs {
        if p.is_nan() {
            continue;
        }
        best = match best {
            Some((b, bp)) if bp > p || (bp == p && b <= name) => Some((b, bp)),
            _ => Some((name, p)),
        };
    }
    best.map(|(name, _)| name)
}

/// The confidence, latency and dominant regime of a binary decision,
/// reading only the fields up to them: no allocation but the regime's
/// name, cheap enough for the writer's hot path.
pub(crate) fn decision_head(bytes: &[u8]) -> Result<DecisionHead, String> {
    let mut r = Reader { bytes, at: 0 };
    let timed = r.format()?;
    let n = r.len("decision_id")?;
    r.take(n, "decision_id")?;
    r.take(12, "timestamp")?;
    let n = r.len("symbol")?;
    r.take(n, "symbol")?;
    r.u8("action")?;
    r.f64("quantity")?;
    let confidence = r.f64("confidence")?;
    let latency_us = r.latency(timed)?;
    let n = r.len("regime_probs")?;
    let mut probs = Vec::with_capacity(n.min(8));
    for _ in 0..n {
        let len = r.len("regime_probs")?;
        let name = std::str::from_utf8(r.take(len, "regime_probs")?)
            .map_err(|_| "regime_probs is not UTF-8".to_owned())?;
        probs.push((name, r.f64("regime_probs")?));
    }
    Ok(head(confidence, latency_us, probs))
}

/// [`decision_head`] of a decision stored as JSON text (schema 1 rows).
pub(crate) fn decision_head_json(json: &str) -> Result<DecisionHead, String> {
    #[derive(serde::Deserialize)]
    struct Head {
        confidence: f64,
        regime_probs: std::collections::BTreeMap<String, f64>,
        #[serde(default)]
        latency_us: Option<u64>,
    }
    let head: Head = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(DecisionHead {
        confidence: head.confidence,
        dominant_regime: dominant_regime(head.regime_probs.iter().map(|(k, v)| (k.as_str(), *v)))
            .map(str::to_owned),
        latency_us: head.latency_us,
    })
}

/// Appends the SHAP values of one decision (format 2): per specialist its
/// margin, expected value and SHAP values.
pub fn encode_shap<'a>(
    n: usize,
    parts: impl ExactSizeIterator<Item = (f64, f64, &'a [f64])>,
    out: &mut Vec<u8>,
) {
    out.push(SHAP_FORMAT);
    out.push(parts.len() as u8);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    for (margin, expected, phi) in parts {
        debug_assert_eq!(phi.len(), n);
        f64le(out, margin);
        f64le(out, expected);
        for v in phi {
            f64le(out, *v);
        }
    }
}

/// The specialists' values of a format-2 blob: `specialists × (2 + n)`
/// doubles (margin, expected value, SHAP values), and `n`.
pub fn decode_shap(bytes: &[u8]) -> Result<(usize, Vec<f64>), String> {
    let [format, parts, n0, n1, rest @ ..] = bytes else {
        return Err("the SHAP values are truncated".into());
    };
    if *format != SHAP_FORMAT {
        return Err(format!("unknown SHAP value format {format}"));
    }
    let (parts, n) = (*parts as usize, u16::from_le_bytes([*n0, *n1]) as usize);
    if rest.len() != parts * (n + 2) * 8 {
        return Err(format!(
            "the SHAP values have {} bytes, {parts} specialists of {n} features need {}",
            rest.len(),
            parts * (n + 2) * 8
        ));
    }
    Ok((
        n,
        rest.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["rsi_14", "macd", "volume_ratio", "atr", "beta"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn decisions() -> Vec<TradingDecision> {
        let base: TradingDecision = serde_json::from_value(serde_json::json!({
            "decision_id": "0190f7a2-0000-7000-8000-000000000001",
            "timestamp": "2026-01-02T14:30:00.123456789Z",
            "symbol": "AAPL",
            "action": "SELL",
            "quantity": 12.5,
            "confidence": 0.71,
            "regime_probs": {"bull": 0.6, "bear": 0.30000000000000004, "sideways": 0.1},
            "strategy_weights": {"bull": 0.5, "bear": 0.5},
            "features": {"rsi_14": 61.25, "macd": -0.000123456789012345, "beta": -0.0, "not_a_model_feature": 1e300},
            "risk_checks": [
                {"name": "position_limit", "passed": true, "value": 100.0, "limit": 1000.0, "detail": "100 units held after the trade (0 before) — é"},
                {"name": "correlation", "passed": false, "value": 0.9, "limit": 0.8}
            ],
            "model_version": "specialists@0123456789abcdef"
        }))
        .unwrap();
        let mut empty = base.clone();
        empty.features.clear();
        empty.regime_probs.clear();
        empty.strategy_weights.clear();
        empty.risk_checks.clear();
        empty.action = Action::Hold;
        empty.timestamp = DateTime::from_timestamp(-5, 7).unwrap();
        let mut all = base.clone();
        for (i, n) in names().into_iter().enumerate() {
            all.features.insert(n, i as f64 * 1.5 - 2.0);
        }
        all.action = Action::Buy;
        // Timed: the smallest, a typical and the largest latency.
        let mut timed: Vec<TradingDecision> = [0, 23, u64::MAX]
            .into_iter()
            .zip([&base, &empty, &all])
            .map(|(latency, d)| TradingDecision {
                latency_us: Some(latency),
                ..d.clone()
            })
            .collect();
        let mut out = vec![base, empty, all];
        out.append(&mut timed);
        out
    }

    /// A decision as the encoder wrote it before decisions carried a
    /// latency (format 1, taken from that encoder), with [`names`] as
    /// the model set's features.
    const FORMAT_1: &str = "012430313930663761322d303030302d373030302d383030302d303030303030\
        30303030303168d657690000000015cd5b07044141504c010000000000002940b81e85eb51b8e63f\
        020462656172333333333333d33f0462756c6c333333333333e33f020462656172000000000000e0\
        3f0462756c6c000000000000e03f05110000000000a04e40000000000000008001056f7468657200\
        00000000000040020e706f736974696f6e5f6c696d69740100000000000059400000000000408f40\
        01026f6b0b636f7272656c6174696f6e00cdccccccccccec3f9a9999999999e93f000e7370656369\
        616c69737473403031";

    fn unhex(hex: &str) -> Vec<u8> {
        let digits: Vec<u8> = hex.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn a_blob_stored_before_latencies_reads_as_before() {
        let names = names();
        let old = unhex(FORMAT_1);
        let d = decode_decision(&old, &names).unwrap();
        let want: TradingDecision = serde_json::from_value(serde_json::json!({
            "decision_id": "0190f7a2-0000-7000-8000-000000000001",
            "timestamp": "2026-01-02T14:30:00.123456789Z",
            "symbol": "AAPL",
            "action": "SELL",
            "quantity": 12.5,
            "confidence": 0.71,
            "regime_probs": {"bull": 0.6, "bear": 0.3},
            "strategy_weights": {"bull": 0.5, "bear": 0.5},
            "features": {"rsi_14": 61.25, "beta": -0.0, "other": 2.0},
            "risk_checks": [
                {"name": "position_limit", "passed": true, "value": 100.0, "limit": 1000.0, "detail": "ok"},
                {"name": "correlation", "passed": false, "value": 0.9, "limit": 0.8}
            ],
            "model_version": "specialists@01"
        }))
        .unwrap();
        assert_eq!(d, want);
        assert_eq!(d.latency_us, None);
        let head = decision_head(&old).unwrap();
        assert_eq!(
            (
                head.confidence,
                head.dominant_regime.as_deref(),
                head.latency_us
            ),
            (0.71, Some("bull"), None)
        );
        // A decision without a latency is still written byte for byte so.
        let mut out = Vec::new();
        encode_decision(
            &DecisionView::of(&d),
            &FeatureIndex::new(&names),
            &mut Vec::new(),
            &mut out,
        );
        assert_eq!(out, old);
        // With one, format 2: the varint after the confidence, and nothing
        // else moves.
        let timed = TradingDecision {
            latency_us: Some(300),
            ..d
        };
        let mut out = Vec::new();
        encode_decision(
            &DecisionView::of(&timed),
            &FeatureIndex::new(&names),
            &mut Vec::new(),
            &mut out,
        );
        // Format, the id (length and 36 bytes), the time, the symbol
        // (length and 4 bytes), the action, quantity and confidence.
        let at = 1 + 1 + 36 + 12 + 1 + 4 + 1 + 8 + 8;
        assert_eq!(out[0], TIMED_DECISION_FORMAT);
        assert_eq!(
            (&out[1..at], &out[at..at + 2]),
            (&old[1..at], &[0xac, 0x02][..])
        );
        assert_eq!(&out[at + 2..], &old[at..]);
        assert_eq!(decode_decision(&out, &names).unwrap(), timed);
        assert_eq!(decision_head(&out).unwrap().latency_us, Some(300));
    }

    #[test]
    fn the_head_of_a_view_is_the_head_read_back_from_its_bytes() {
        // As published: regimes in document order, one named twice (the
        // last value counts), ties between names, none at all.
        let names = names();
        let index = FeatureIndex::new(&names);
        let regimes = [
            r#"{"bull": 0.2, "bear": 0.5, "bull": 0.6}"#,
            r#"{"bull": 0.6, "bear": 0.5, "bull": 0.2}"#,
            r#"{"sideways": 0.4, "bear": 0.4, "bull": 0.2}"#,
            r#"{}"#,
        ];
        for (i, probs) in regimes.iter().enumerate() {
            let json = format!(
                r#"{{"decision_id": "0190f7a2-0000-7000-8000-000000000001",
                "timestamp": "2026-01-02T14:30:00Z", "symbol": "AAPL", "action": "BUY",
                "quantity": 1.0, "confidence": 0.55, "regime_probs": {probs},
                "strategy_weights": {{}}, "features": {{"rsi_14": 61.25}}, "risk_checks": [],
                "model_version": "v1"{}}}"#,
                if i % 2 == 0 {
                    r#", "latency_us": 42"#
                } else {
                    ""
                }
            );
            let view: DecisionView = serde_json::from_str(&json).unwrap();
            let mut out = Vec::new();
            encode_decision(&view, &index, &mut Vec::new(), &mut out);
            let head = DecisionHead::of_view(&view);
            assert_eq!(head, decision_head(&out).unwrap(), "{probs}");
            assert_eq!(
                head.dominant_regime.as_deref(),
                [Some("bull"), Some("bear"), Some("bear"), None][i],
                "{probs}"
            );
            assert_eq!(head.latency_us, (i % 2 == 0).then_some(42));
        }
    }

    #[test]
    fn the_head_reads_what_the_whole_decision_reads() {
        let names = names();
        let index = FeatureIndex::new(&names);
        let mut scratch = Vec::new();
        for d in decisions() {
            let mut out = Vec::new();
            encode_decision(&DecisionView::of(&d), &index, &mut scratch, &mut out);
            let head = decision_head(&out).unwrap();
            assert_eq!(DecisionHead::of_view(&DecisionView::of(&d)), head);
            assert_eq!(head.confidence.to_bits(), d.confidence.to_bits());
            assert_eq!(head.latency_us, d.latency_us);
            let expected = dominant_regime(d.regime_probs.iter().map(|(k, v)| (k.as_str(), *v)));
            assert_eq!(head.dominant_regime.as_deref(), expected);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(decision_head_json(&json).unwrap(), head);
            assert!(decision_head(&out[..out.len().min(30)]).is_err());
        }
        assert_eq!(decisions()[0].regime_probs.len(), 3);
        assert_eq!(
            decision_head(&{
                let mut out = Vec::new();
                encode_decision(
                    &DecisionView::of(&decisions()[0]),
                    &index,
                    &mut scratch,
                    &mut out,
                );
                out
            })
            .unwrap()
            .dominant_regime
            .as_deref(),
            Some("bull")
        );
    }

    #[test]
    fn the_dominant_regime_is_the_most_probable_ties_to_the_first_name() {
        assert_eq!(dominant_regime([]), None);
        assert_eq!(
            dominant_regime([("bull", 0.2), ("bear", 0.5), ("sideways", 0.3)]),
            Some("bear")
        );
        assert_eq!(
            dominant_regime([("sideways", 0.4), ("bull", 0.4), ("bear", 0.2)]),
            Some("bull")
        );
        assert_eq!(
            dominant_regime([("bull", 0.4), ("bear", 0.4)]),
            Some("bear")
        );
        assert_eq!(
            dominant_regime([("bull", f64::NAN), ("bear", 0.0)]),
            Some("bear")
        );
        assert_eq!(dominant_regime([("bull", f64::NAN)]), None);
    }

    #[test]
    fn decisions_read_back_equal() {
        let names = names();
        let index = FeatureIndex::new(&names);
        let mut scratch = Vec::new();
        for d in decisions() {
            let mut out = Vec::new();
            encode_decision(&DecisionView::of(&d), &index, &mut scratch, &mut out);
            let back = decode_decision(&out, &names).unwrap();
            assert_eq!(back, d);
            assert_eq!(
                serde_json::to_string(&back).unwrap(),
                serde_json::to_string(&d).unwrap()
            );
            // Bit-exact numbers, negative zero included.
            assert_eq!(
                back.features.get("beta").map(|v| v.to_bits()),
                d.features.get("beta").map(|v| v.to_bits())
            );
            let json = serde_json::to_vec(&d).unwrap();
            assert!(
                out.len() * 5 < json.len() * 3,
                "{} vs {}",
                out.len(),
                json.len()
            );
        }
    }

    #[test]
    fn broken_decisions_are_errors() {
        let names = names();
        let index = FeatureIndex::new(&names);
        let mut out = Vec::new();
        encode_decision(
            &DecisionView::of(&decisions()[0]),
            &index,
            &mut Vec::new(),
            &mut out,
        );
        for cut in [0, 1, 10, out.len() / 2, out.len() - 1] {
            assert!(
                decode_decision(&out[..cut], &names).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = out.clone();
        longer.push(0);
        assert!(decode_decision(&longer, &names)
            .unwrap_err()
            .contains("left over"));
        assert!(decode_decision(&out, &names[..4])
            .unwrap_err()
            .contains("model features"));
        let mut wrong = out.clone();
        wrong[0] = 9;
        assert!(decode_decision(&wrong, &names)
            .unwrap_err()
            .contains("format 9"));
        // A decision cut inside its latency (u64::MAX: ten bytes).
        let timed = &decisions()[5];
        assert_eq!(timed.latency_us, Some(u64::MAX));
        let mut out = Vec::new();
        encode_decision(&DecisionView::of(timed), &index, &mut Vec::new(), &mut out);
        let at = 1 + 1 + 36 + 12 + 1 + 4 + 1 + 8 + 8;
        assert_eq!(
            out[at..at + 10],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        for cut in [at, at + 5, at + 9] {
            assert!(decode_decision(&out[..cut], &names)
                .unwrap_err()
                .contains("latency_us"));
            assert!(decision_head(&out[..cut]).is_err());
        }
    }

    #[test]
    fn shap_values_read_back_bit_exact() {
        let phi = [[0.1, -0.0, 3.5e-300], [1.0, 2.0, f64::MIN_POSITIVE]];
        let mut out = Vec::new();
        encode_shap(
            3,
            [(0.5, -1.25, &phi[0][..]), (7.0, 0.0, &phi[1][..])].into_iter(),
            &mut out,
        );
        assert_eq!(out.len(), 4 + 2 * 5 * 8);
        let (n, values) = decode_shap(&out).unwrap();
        assert_eq!(n, 3);
        let want = [
            0.5,
            -1.25,
            0.1,
            -0.0,
            3.5e-300,
            7.0,
            0.0,
            1.0,
            2.0,
            f64::MIN_POSITIVE,
        ];
        assert!(values
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(decode_shap(&out[..out.len() - 1]).is_err());
    }
}
