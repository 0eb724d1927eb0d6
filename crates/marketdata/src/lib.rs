//! ultracore-marketdata
