//! ultracore-portfolio
