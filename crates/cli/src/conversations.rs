//! The assistant's conversations kept in the users-and-conversations
//! tables (whichever database holds them), so each question and answer is
//! a row change captured on `db.changes.conversations`.

use std::future::Future;
use std::pin::Pin;

use ultracore_agents::conversation::{ConversationSink, SinkError};
use ultracore_cdc::model::{NewConversation, NewMessage};
use ultracore_cdc::{Error, Operational};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`ConversationSink`] over the operational tables.
#[derive(Debug, Clone)]
pub struct Conversations(pub Operational);

fn sink_error(e: Error) -> SinkError {
    match e {
        Error::NotFound { .. } => SinkError::NotFound(e.to_string()),
        Error::Conflict(m) => SinkError::Conflict(m),
        Error::Invalid { .. } => SinkError::Conflict(e.to_string()),
        e => SinkError::Unavailable(e.to_string()),
    }
}

fn not_found(id: &str) -> SinkError {
    SinkError::NotFound(format!("no conversation with id '{id}' for this customer"))
}

impl ConversationSink for Conversations {
    fn check<'a>(
        &'a self,
        customer_id: &'a str,
        conversation_id: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            match self
                .0
                .conversation(conversation_id.to_owned())
                .await
                .map_err(sink_error)?
            {
                Some(c) if c.customer_id == customer_id => {
                    if c.message_count as usize + 2 > ultracore_cdc::model::MAX_MESSAGES {
                        return Err(SinkError::Conflict(format!(
                            "conversation '{conversation_id}' is full ({} messages): leave conversation_id out to start a new one",
                            c.message_count
                        )));
                    }
                    Ok(())
                }
                // Another customer's conversation does not exist for this one.
                _ => Err(not_found(conversation_id)),
            }
        })
    }

    fn append<'a>(
        &'a self,
        customer_id: &'a str,
        conversation_id: Option<&'a str>,
        question: &'a str,
        answer: &'a str,
    ) -> BoxFuture<'a, Result<String, SinkError>> {
        Box::pin(async move {
            let id = match conversation_id {
                Some(id) => id.to_owned(),
                None => {
                    let subject: String = question.chars().take(80).collect();
                    self.0
                        .create_conversation(NewConversation {
                            id: None,
                            customer_id: customer_id.to_owned(),
                            subject: Some(subject),
                        })
                        .await
                        .map_err(sink_error)?
                        .id
                }
            };
            for (role, text) in [("customer", question), ("agent", answer)] {
                // A message is at most MAX_MESSAGE_CHARS: a longer answer is kept cut.
                let text: String = text
                    .chars()
                    .take(ultracore_cdc::model::MAX_MESSAGE_CHARS)
                    .collect();
                if text.trim().is_empty() {
                    continue;
                }
                let added = self
                    .0
                    .add_message(
                        id.clone(),
                        NewMessage {
                            role: role.into(),
                            text,
                        },
                    )
                    .await
                    .map_err(sink_error)?;
                if added.is_none() {
                    return Err(not_found(&id));
                }
            }
            Ok(id)
        })
    }
}
