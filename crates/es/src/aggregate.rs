use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use ultracore_log::{Envelope, EventFamily};

/// An event-sourced entity: a fold over its events.
///
/// `handle` holds all business logic: it decides a command against the
/// current state and returns the events to store (or rejects the command).
/// `apply` only changes state and cannot fail; it must be deterministic, since
/// loading, snapshots and time travel all replay it.
///
/// ```ignore
/// impl Aggregate for Account {
///     const TYPE: &'static str = "Account";
///     type Event = AccountEvent;
///     type Command = AccountCommand;
///     type Error = AccountError;
///     fn handle(&self, cmd: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> { … }
///     fn apply(&mut self, event: &AccountEvent) { … }
/// }
/// ```
pub trait Aggregate:
    Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The aggregate type, as written in every envelope (`aggregate_type`)
    /// and in the topic name (`es.<TYPE>`). Letters, digits, `.`, `_`, `-`.
    const TYPE: &'static str;
    /// The version of the serialized state. Bump it whenever the state's
    /// shape or the meaning of `apply` changes: stored snapshots of another
    /// version are then ignored and rebuilt from the events.
    const STATE_SCHEMA: u32 = 1;
    /// Store a snapshot every this many events (0: never). The store's
    /// options can override it per aggregate type.
    const SNAPSHOT_EVERY: u64 = 100;

    /// The events, one enum; old schema versions are upcast by its
    /// [`EventFamily::decode`].
    type Event: EventFamily + Clone + std::fmt::Debug;
    type Command;
    /// Why a command is rejected.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides `command` against the current state. Pure: no I/O.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. No logic, no failure.
    fn apply(&mut self, event: &Self::Event);
}

/// What a save expects the aggregate's current version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    /// Whatever it is (no concurrency check).
    Any,
    /// The aggregate has no events yet.
    NoStream,
    /// Exactly this version (0 means no events, as `NoStream`).
    Exact(u64),
}

impl Expected {
    /// Whether `actual` satisfies the expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            Expected::Any => true,
            Expected::NoStream => actual == 0,
            Expected::Exact(v) => v == actual,
        }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Any => write!(f, "any version"),
            Expected::NoStream => write!(f, "no events yet"),
            Expected::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Up to where a load replays: everything, or a point in the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cut {
    #[default]
    Latest,
    /// The state after this version (the aggregate as it was then).
    Version(u64),
    /// The state after every event stamped at or before this time.
    AsOf(DateTime<Utc>),
}

/// An aggregate as loaded: its state, its version and how it was built.
#[derive(Debug, Clone)]
pub struct Loaded<A: Aggregate> {
    pub id: String,
    pub state: A,
    /// The version of the last event folded in (0: no events). Save with
    /// `Expected::Exact(version)`.
    pub version: u64,
    /// The snapshot version the load started from, if any.
    pub from_snapshot: Option<u64>,
    /// Events folded after the snapshot (or from the start).
    pub events_replayed: u64,
}

/// An event of an aggregate as stored: the typed envelope.
pub type StoredEvent<A> = Envelope<<A as Aggregate>::Event>;
