//! Listing consumer groups with the ListGroups request alone.
//!
//! rdkafka's `fetch_group_list` (librdkafka's legacy `rd_kafka_list_groups`)
//! follows ListGroups with a DescribeGroups per group. Tansu 0.6 with sqlite
//! storage fails every DescribeGroups (it cannot decode the group state it
//! stored) and drops the connection, so that call never succeeds there.
//! librdkafka's admin `ListConsumerGroups` (KIP-518) sends ListGroups only
//! and works on Kafka and Tansu alike, but rdkafka 0.39 does not wrap it:
//! this module calls it through librdkafka's C API, the one place in the
//! workspace with `unsafe`.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};

use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaRespErr;
use ultracore_log::{Error, Result};

use crate::log::{blocking, KafkaLog};

/// Names of every consumer group of this deployment the cluster knows
/// (those with the topic prefix, unprefixed), sorted. An error when any
/// broker could not answer, rather than a partial list.
pub(crate) async fn list_groups(log: &KafkaLog) -> Result<Vec<String>> {
    let this = log.clone();
    let timeout_ms =
        c_int::try_from(log.inner.config.request_timeout.as_millis()).unwrap_or(30_000);
    let all = blocking(move || {
        let rk = this.inner.admin.inner().native_ptr();
        // SAFETY: `rk` is a live handle owned by `this` (kept alive for the whole call).
        unsafe { list_consumer_groups(rk, timeout_ms) }
    })
    .await?;
    let config = &log.inner.config;
    let mut names: Vec<String> = all
        .iter()
        .filter_map(|n| config.strip(n).map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Frees a librdkafka object when dropped, so every exit path cleans up.
struct Guard<T>(*mut T, unsafe extern "C" fn(*mut T));

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from the matching librdkafka constructor and is freed once.
            unsafe { (self.1)(self.0) }
        }
    }
}

/// # Safety
/// `rk` must be a valid librdkafka handle for the duration of the call.
unsafe fn list_consumer_groups(rk: *mut rd::rd_kafka_t, timeout_ms: c_int) -> Result<Vec<String>> {
    let failed = |what: &str| Error::Kafka(format!("listing consumer groups: {what}"));
    let queue = Guard(rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_destroy);
    let options = Guard(
        rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS,
        ),
        rd::rd_kafka_AdminOptions_destroy,
    );
    if queue.0.is_null() || options.0.is_null() {
        return Err(failed("librdkafka could not allocate the request"));
    }
    let mut errstr = [0 as c_char; 512];
    let err = rd::rd_kafka_AdminOptions_set_request_timeout(
        options.0,
        timeout_ms,
        errstr.as_mut_ptr(),
        errstr.len(),
    );
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Err(failed(&CStr::from_ptr(errstr.as_ptr()).to_string_lossy()));
    }
    rd::rd_kafka_ListConsumerGroups(rk, options.0, queue.0);
    // The request carries its own timeout; the extra second only guards
    // against a result that never arrives.
    let event = Guard(
        rd::rd_kafka_queue_poll(queue.0, timeout_ms.saturating_add(1000)),
        rd::rd_kafka_event_destroy,
    );
    if event.0.is_null() {
        return Err(Error::Unavailable(format!(
            "listing consumer groups: no answer within {timeout_ms} ms"
        )));
    }
    if rd::rd_kafka_event_error(event.0) != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        let msg = rd::rd_kafka_event_error_string(event.0);
        return Err(failed(&c_str(msg)));
    }
    let result = rd::rd_kafka_event_ListConsumerGroups_result(event.0);
    if result.is_null() {
        return Err(failed("unexpected reply event"));
    }
    let mut n_errors = 0usize;
    let errors = rd::rd_kafka_ListConsumerGroups_result_errors(result, &mut n_errors);
    if n_errors > 0 && !errors.is_null() {
        let first = *errors;
        return Err(failed(&c_str(rd::rd_kafka_error_string(first))));
    }
    let mut n = 0usize;
    let valid = rd::rd_kafka_ListConsumerGroups_result_valid(result, &mut n);
    let mut names = Vec::with_capacity(n);
    for i in 0..n {
        let listing = *valid.add(i);
        names.push(c_str(rd::rd_kafka_ConsumerGroupListing_group_id(listing)).into_owned());
    }
    // The strings point into `event`, which is freed only after they were copied.
    drop(event);
    Ok(names)
}

/// # Safety
/// `p` is null or a NUL-terminated string that outlives the returned value.
unsafe fn c_str<'a>(p: *const c_char) -> std::borrow::Cow<'a, str> {
    if p.is_null() {
        "(no message)".into()
    } else {
        CStr::from_ptr(p).to_string_lossy()
    }
}
