//! librdkafka errors mapped onto the log's [`Error`], keeping librdkafka's
//! own message so an operator sees what the broker said.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use ultracore_log::Error;

/// Maps an error that is not about one topic.
pub(crate) fn map_err(e: KafkaError) -> Error {
    map(e, None)
}

/// Maps an error from an operation on `topic` (unprefixed), so an unknown
/// topic is reported by the name the caller used.
pub(crate) fn map_topic_err(e: KafkaError, topic: &str) -> Error {
    map(e, Some(topic))
}

fn map(e: KafkaError, topic: Option<&str>) -> Error {
    if let KafkaError::ClientCreation(msg) | KafkaError::ClientConfig(_, msg, _, _) = &e {
        // Only a bad property makes client creation fail; the network is not touched yet.
        return Error::InvalidArgument(format!("Kafka client configuration: {msg}"));
    }
    match (e.rdkafka_error_code(), topic) {
        (
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic),
            Some(t),
        ) => Error::UnknownTopic(t.to_owned()),
        (Some(code), _) if transient(code) => Error::Unavailable(e.to_string()),
        _ => Error::Kafka(e.to_string()),
    }
}

/// Codes that mean "the cluster did not answer in time", which a retry may fix.
pub(crate) fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::Resolve
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_topic_names_the_callers_topic() {
        let e = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert!(matches!(map_topic_err(e, "orders"), Error::UnknownTopic(t) if t == "orders"));
    }

    #[test]
    fn timeouts_are_unavailable_and_keep_the_message() {
        let e = map_err(KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut,
        ));
        assert!(
            matches!(&e, Error::Unavailable(m) if m.contains("timed out")),
            "{e}"
        );
    }

    #[test]
    fn bad_configuration_is_an_invalid_argument() {
        let e = map_err(KafkaError::ClientCreation("No such property: foo".into()));
        assert!(
            matches!(&e, Error::InvalidArgument(m) if m.contains("foo")),
            "{e}"
        );
    }

    #[test]
    fn other_errors_keep_librdkafkas_message() {
        let e = map_err(KafkaError::MessageProduction(
            RDKafkaErrorCode::InvalidRecord,
        ));
        assert!(
            matches!(&e, Error::Kafka(m) if m.contains("Message production error")),
            "{e}"
        );
    }
}
