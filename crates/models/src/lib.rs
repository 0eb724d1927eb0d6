//! ultracore-models
