//! The API's error answer is the platform's one error body: RFC 9457
//! problem+json ([`ultracore_http::Problem`]).

pub use ultracore_http::Problem as ApiError;
