//! The portfolio's ESG preferences: the screening criteria its owner set
//! and its exclusion list, their events, commands and checks.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ultracore_esg::screening::{check_issuer_id, ScreeningCriteria, MAX_LIST};

use super::{Portfolio, PortfolioError, PortfolioEvent};

/// The portfolio's ESG preferences, as set last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsgPreferences {
    /// The criteria its holdings are screened against.
    pub criteria: ScreeningCriteria,
    /// Who set them, when the command said.
    #[serde(default)]
    pub set_by: Option<String>,
    pub set_at: DateTime<Utc>,
}

/// The ESG preferences were set, replacing those before. Also the
/// command that sets them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsgPreferenceSet {
    pub preferences: ScreeningCriteria,
    /// The principal who set them (1 to 128 characters).
    #[serde(default)]
    pub set_by: Option<String>,
    pub set_at: DateTime<Utc>,
}

/// The exclusion list changed: the issuers added and removed (each a
/// change: none was listed before, or each was).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExclusionListUpdated {
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// The command that changes the exclusion list: issuers (tickers or
/// ISINs, upper case) to add and to remove. Adding a listed issuer or
/// removing an unlisted one changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExclusionsUpdate {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
    /// Why (at most 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// The most issuers the exclusion list holds.
pub const MAX_EXCLUSIONS: usize = MAX_LIST;
/// The longest principal id of [`EsgPreferenceSet::set_by`].
const MAX_PRINCIPAL_CHARS: usize = 128;
/// The longest reason of an exclusion update.
const MAX_REASON_CHARS: usize = 500;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PortfolioError {
    PortfolioError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks free text: at most `max` characters, no control characters
/// (line breaks and tabs aside), not blank.
fn check_text(field: &str, text: &str, max: usize) -> Result<(), PortfolioError> {
    if text.trim().is_empty() {
        return Err(invalid(field, "is blank; leave it out instead"));
    }
    if text.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(invalid(field, "has control characters"));
    }
    Ok(())
}

impl Portfolio {
    pub(super) fn set_preferences(
        &self,
        p: EsgPreferenceSet,
    ) -> Result<Vec<PortfolioEvent>, PortfolioError> {
        p.preferences.validate().map_err(|f| {
            invalid(
                f.field
                    .map_or_else(|| "preferences".to_owned(), |f| format!("preferences.{f}")),
                f.reason,
            )
        })?;
        if let Some(by) = &p.set_by {
            if by.trim() != by || by.contains(['\n', '\t']) {
                return Err(invalid(
                    "set_by",
                    "a principal id has no blanks around it or line breaks",
                ));
            }
            check_text("set_by", by, MAX_PRINCIPAL_CHARS)?;
        }
        let unchanged = self
            .esg_preferences
            .as_ref()
            .is_some_and(|current| current.criteria == p.preferences);
        Ok(if unchanged {
            vec![]
        } else {
            vec![PortfolioEvent::EsgPreferenceSet(Box::new(p))]
        })
    }

    pub(super) fn update_exclusions(
        &self,
        u: ExclusionsUpdate,
    ) -> Result<Vec<PortfolioEvent>, PortfolioError> {
        for (list, ids) in [("add", &u.add), ("remove", &u.remove)] {
            if ids.len() > MAX_EXCLUSIONS {
                return Err(invalid(
                    list,
                    format!(
                        "{} entries; at most {MAX_EXCLUSIONS} are accepted",
                        ids.len()
                    ),
                ));
            }
            for (i, id) in ids.iter().enumerate() {
                check_issuer_id(id).map_err(|reason| invalid(format!("{list}[{i}]"), reason))?;
            }
        }
        if let Some((i, id)) = u
            .remove
            .iter()
            .enumerate()
            .find(|(_, id)| u.add.contains(id))
        {
            return Err(invalid(
                format!("remove[{i}]"),
                format!("{id} is both added and removed; give it once"),
            ));
        }
        if let Some(reason) = &u.reason {
            check_text("reason", reason, MAX_REASON_CHARS)?;
        }
        let added: BTreeSet<&String> = u
            .add
            .iter()
            .filter(|id| !self.exclusions.contains(*id))
            .collect();
        let removed: BTreeSet<&String> = u
            .remove
            .iter()
            .filter(|id| self.exclusions.contains(*id))
            .collect();
        if added.is_empty() && removed.is_empty() {
            return Ok(vec![]);
        }
        let size = self.exclusions.len() + added.len() - removed.len();
        if size > MAX_EXCLUSIONS {
            return Err(invalid(
                "add",
                format!("the exclusion list would hold {size} issuers; at most {MAX_EXCLUSIONS}"),
            ));
        }
        Ok(vec![PortfolioEvent::ExclusionListUpdated(
            ExclusionListUpdated {
                added: added.into_iter().cloned().collect(),
                removed: removed.into_iter().cloned().collect(),
                reason: u.reason,
                updated_at: u.updated_at,
            },
        )])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use ultracore_es::Aggregate;
    use ultracore_log::{DecodeError, EventFamily};

    use super::super::PortfolioCommand;
    use super::*;

    /// Given past events, when a command is handled, then these events (or this rejection).
    fn given(events: &[PortfolioEvent]) -> Portfolio {
        let mut p = Portfolio::default();
        for e in events {
            p.apply(e);
        }
        p
    }

    fn at(minute: u32) -> DateTime<Utc> {
        format!("2026-03-02T10:{minute:02}:00Z").parse().unwrap()
    }

    fn criteria() -> ScreeningCriteria {
        ScreeningCriteria {
            min_esg_score: Some(60.0),
            max_carbon_intensity: Some(150.0),
            exclude_sectors: vec!["Energy".into()],
            ..Default::default()
        }
    }

    fn set(criteria: ScreeningCriteria, minute: u32) -> EsgPreferenceSet {
        EsgPreferenceSet {
            preferences: criteria,
            set_by: Some("pm-ada".into()),
            set_at: at(minute),
        }
    }

    fn update(add: &[&str], remove: &[&str], minute: u32) -> ExclusionsUpdate {
        ExclusionsUpdate {
            add: add.iter().map(|s| (*s).to_owned()).collect(),
            remove: remove.iter().map(|s| (*s).to_owned()).collect(),
            reason: Some("client mandate".into()),
            updated_at: at(minute),
        }
    }

    fn field(r: Result<Vec<PortfolioEvent>, PortfolioError>) -> String {
        match r {
            Err(PortfolioError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn preferences_are_set_once_and_replaced_when_they_change() {
        let first = set(criteria(), 0);
        let events = given(&[])
            .handle(PortfolioCommand::SetEsgPreferences(Box::new(first.clone())))
            .unwrap();
        assert_eq!(
            events,
            [PortfolioEvent::EsgPreferenceSet(Box::new(first.clone()))]
        );
        let state = given(&events);
        assert_eq!(
            state.esg_preferences,
            Some(EsgPreferences {
                criteria: criteria(),
                set_by: Some("pm-ada".into()),
                set_at: at(0),
            })
        );
        // The same criteria again, later and by someone else: nothing new.
        let again = EsgPreferenceSet {
            set_by: None,
            ..set(criteria(), 5)
        };
        assert_eq!(
            state.handle(PortfolioCommand::SetEsgPreferences(Box::new(again))),
            Ok(vec![])
        );
        // Other criteria replace them.
        let looser = set(
            ScreeningCriteria {
                min_esg_score: Some(50.0),
                ..criteria()
            },
            6,
        );
        let events2 = state
            .handle(PortfolioCommand::SetEsgPreferences(Box::new(
                looser.clone(),
            )))
            .unwrap();
        assert_eq!(events2.len(), 1);
        let state = given(&[events, events2].concat());
        let p = state.esg_preferences.clone().unwrap();
        assert_eq!((p.criteria, p.set_at), (looser.preferences, at(6)));
        // Preferences are no optimization: the status stays "new".
        assert_eq!(state.status(), "new");
    }

    #[test]
    fn bad_preferences_name_the_field() {
        let bad = |p: EsgPreferenceSet| {
            field(given(&[]).handle(PortfolioCommand::SetEsgPreferences(Box::new(p))))
        };
        assert_eq!(
            bad(set(
                ScreeningCriteria {
                    min_esg_score: Some(120.0),
                    ..Default::default()
                },
                0
            )),
            "preferences.min_esg_score"
        );
        assert_eq!(
            bad(set(
                ScreeningCriteria {
                    exclude_issuers: vec!["XOM".into(), "x o m".into()],
                    ..Default::default()
                },
                0
            )),
            "preferences.exclude_issuers[1]"
        );
        let long = "x".repeat(129);
        for by in ["", " pm", "a\nb", long.as_str()] {
            assert_eq!(
                bad(EsgPreferenceSet {
                    set_by: Some(by.to_owned()),
                    ..set(criteria(), 0)
                }),
                "set_by",
                "{by:?}"
            );
        }
    }

    #[test]
    fn exclusions_change_only_by_what_is_new() {
        let isin = ultracore_marketdata::mesh::placeholder_isin("CVX");
        let events = given(&[])
            .handle(PortfolioCommand::UpdateExclusions(update(
                &["XOM", isin.as_str(), "XOM"],
                &["KO"],
                0,
            )))
            .unwrap();
        // XOM named twice is added once; KO was never listed.
        assert_eq!(
            events,
            [PortfolioEvent::ExclusionListUpdated(ExclusionListUpdated {
                added: vec!["XOM".into(), isin.clone()],
                removed: vec![],
                reason: Some("client mandate".into()),
                updated_at: at(0),
            })]
        );
        let state = given(&events);
        assert_eq!(
            state.exclusions,
            BTreeSet::from([isin.clone(), "XOM".to_owned()])
        );
        // Adding listed issuers and removing unlisted ones: nothing.
        assert_eq!(
            state.handle(PortfolioCommand::UpdateExclusions(update(
                &["XOM"],
                &["KO"],
                1
            ))),
            Ok(vec![])
        );
        assert_eq!(
            state.handle(PortfolioCommand::UpdateExclusions(update(&[], &[], 1))),
            Ok(vec![])
        );
        // A removal and an addition in one event.
        let events2 = state
            .handle(PortfolioCommand::UpdateExclusions(update(
                &["RRC"],
                &["XOM"],
                2,
            )))
            .unwrap();
        let PortfolioEvent::ExclusionListUpdated(u) = &events2[0] else {
            panic!("{events2:?}")
        };
        assert_eq!(
            (u.added.clone(), u.removed.clone()),
            (vec!["RRC".to_owned()], vec!["XOM".to_owned()])
        );
        let state = given(&[events, events2].concat());
        assert_eq!(state.exclusions, BTreeSet::from([isin, "RRC".to_owned()]));
    }

    #[test]
    fn bad_exclusion_updates_name_the_field() {
        let bad =
            |u: ExclusionsUpdate| field(given(&[]).handle(PortfolioCommand::UpdateExclusions(u)));
        assert_eq!(bad(update(&["XOM", "xom"], &[], 0)), "add[1]");
        assert_eq!(bad(update(&[], &["US0378331006"], 0)), "remove[0]");
        assert_eq!(bad(update(&["XOM"], &["KO", "XOM"], 0)), "remove[1]");
        assert_eq!(
            bad(ExclusionsUpdate {
                reason: Some("x".repeat(501)),
                ..update(&["XOM"], &[], 0)
            }),
            "reason"
        );
        let many: Vec<String> = (0..=MAX_EXCLUSIONS).map(|i| format!("T{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(bad(update(&many, &[], 0)), "add");
    }

    #[test]
    fn the_new_events_round_trip_through_their_payloads() {
        let events = [
            PortfolioEvent::EsgPreferenceSet(Box::new(set(criteria(), 0))),
            PortfolioEvent::ExclusionListUpdated(ExclusionListUpdated {
                added: vec!["XOM".into()],
                removed: vec!["KO".into()],
                reason: None,
                updated_at: at(1),
            }),
        ];
        for e in events {
            assert_eq!(e.schema_version(), 1);
            let decoded = PortfolioEvent::decode(e.event_type(), 1, e.to_payload()).unwrap();
            assert_eq!(decoded, e);
        }
        // The payloads as other languages' consumers read them.
        let p = PortfolioEvent::EsgPreferenceSet(Box::new(set(criteria(), 0))).to_payload();
        assert_eq!(
            p,
            json!({
                "preferences": {"min_esg_score": 60.0, "max_carbon_intensity": 150.0, "exclude_sectors": ["Energy"]},
                "set_by": "pm-ada",
                "set_at": "2026-03-02T10:00:00Z"
            })
        );
        let minimal = PortfolioEvent::decode(
            "exclusion_list_updated",
            1,
            json!({"added": ["XOM"], "updated_at": "2026-03-02T10:00:00Z"}),
        )
        .unwrap();
        assert!(matches!(minimal, PortfolioEvent::ExclusionListUpdated(u) if u.removed.is_empty()));
        assert!(matches!(
            PortfolioEvent::decode("esg_preference_set", 2, json!({})),
            Err(DecodeError::UnsupportedVersion { newest: 1, .. })
        ));
        assert!(matches!(
            PortfolioEvent::decode(
                "esg_preference_set",
                1,
                json!({"preferences": {"min_score": 1}, "set_at": "2026-03-02T10:00:00Z"})
            ),
            Err(DecodeError::PayloadMismatch { .. })
        ));
    }

    #[test]
    fn a_state_stored_before_preferences_existed_still_loads() {
        let old = json!({
            "portfolio_id": "pf-1", "requests": {}, "latest_request": null, "weights": {"KO": 1.0},
            "weights_from": null, "completed": 1, "failed": 0, "orders_staged": 0
        });
        let state: Portfolio = serde_json::from_value(old).unwrap();
        assert_eq!(state.esg_preferences, None);
        assert!(state.exclusions.is_empty());
        // And the new fields are part of the state as it is serialized.
        let mut state = state;
        state.apply(&PortfolioEvent::ExclusionListUpdated(
            ExclusionListUpdated {
                added: vec!["XOM".into()],
                removed: vec![],
                reason: None,
                updated_at: at(0),
            },
        ));
        let v = serde_json::to_value(&state).unwrap();
        assert_eq!(v["exclusions"], json!(["XOM"]));
        assert_eq!(v["esg_preferences"], json!(null));
    }
}
