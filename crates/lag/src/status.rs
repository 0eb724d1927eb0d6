//! [`Status`]: what the evaluator says of a partition or a group.

use serde::{Deserialize, Serialize};

/// The status of a partition, or of a group (its worst partition).
///
/// Ordered by severity: a group's status is the largest of its
/// partitions'. Burrow orders STOP below STALL and reports any of STOP,
/// STALL and REWIND as `ERR` for a group; here the group keeps its worst
/// partition's own status, so an alert or a dashboard says which, and the
/// order puts a consumer that is gone (STOP) above one that is alive but
/// stuck (STALL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Nothing known: a partition without samples, a group that is gone.
    NotFound,
    /// Keeping up, or not enough samples yet to say otherwise.
    Ok,
    /// Committing, but the lag does not go down over the window: slow.
    Warn,
    /// Lagging, and the committed offset did not move over the window
    /// while the group committed elsewhere: alive but stuck.
    Stall,
    /// Lagging, and the group committed nothing for longer than the window
    /// covers: gone or hung.
    Stop,
    /// The committed offset went back and has not caught up again.
    Rewind,
}

impl Status {
    /// Every status, in severity order.
    pub const ALL: [Status; 6] = [
        Status::NotFound,
        Status::Ok,
        Status::Warn,
        Status::Stall,
        Status::Stop,
        Status::Rewind,
    ];

    /// The value of the `ultracore_lag_*_status` gauges: -1 NOTFOUND, 0 OK,
    /// 1 WARN, 2 STALL, 3 STOP, 4 REWIND (so `>= 2` is "in error").
    pub fn code(self) -> i32 {
        match self {
            Status::NotFound => -1,
            Status::Ok => 0,
            Status::Warn => 1,
            Status::Stall => 2,
            Status::Stop => 3,
            Status::Rewind => 4,
        }
    }

    /// The name Burrow uses: `NOTFOUND`, `OK`, `WARN`, `STALL`, `STOP`, `REWIND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotFound => "NOTFOUND",
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
            Status::Rewind => "REWIND",
        }
    }

    /// Whether it calls for an operator (STALL, STOP, REWIND).
    pub fn is_error(self) -> bool {
        self >= Status::Stall
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_severity_and_names_are_burrows() {
        for w in Status::ALL.windows(2) {
            assert!(w[0] < w[1] && w[0].code() < w[1].code());
        }
        assert_eq!(
            serde_json::to_string(&Status::NotFound).unwrap(),
            "\"NOTFOUND\""
        );
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(!Status::Warn.is_error() && Status::Stall.is_error());
    }
}
