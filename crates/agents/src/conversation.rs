//! Where the assistant keeps its conversations with customers: a
//! [`ConversationSink`] the server provides (the users-and-conversations
//! tables, whose changes are captured on `db.changes.conversations`). The
//! agents do not depend on which database holds them.

use futures::future::BoxFuture;

/// Why a conversation could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// No such conversation of this customer (answered as 404).
    #[error("{0}")]
    NotFound(String),
    /// The conversation cannot take more (full, closed) (answered as 409).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("{0}")]
    Unavailable(String),
}

/// The conversations of the assistant.
pub trait ConversationSink: Send + Sync + 'static {
    /// Whether `conversation_id` is a conversation of `customer_id` that
    /// can take a question and its answer.
    fn check<'a>(
        &'a self,
        customer_id: &'a str,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Appends the question (as the agents saw it: personal data masked)
    /// and the answer to `conversation_id`, or to a new conversation of
    /// `customer_id` when none is given; returns the conversation's id.
    fn append<'a>(
        &'a self,
        customer_id: &'a str,
        conversation_id: Option<&'a str>,
        question: &'a str,
        answer: &'a str,
    ) -> BoxFuture<'a, Result<String, SinkError>>;
}
