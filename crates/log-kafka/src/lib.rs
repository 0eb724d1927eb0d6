//! ultracore-log-kafka
