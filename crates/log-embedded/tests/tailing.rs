//! Readers at the tail of the active segment while the writer appends: a
//! frame the writer has not finished (past the high watermark) is not
//! corruption, whatever its size relative to the reader's chunk.

use std::time::Duration;

use ultracore_log::{Consumer, ConsumerOptions, EventLog, NewRecord, TopicSpec};
use ultracore_log_embedded::{EmbeddedLog, EmbeddedOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_following_the_writer_never_see_a_half_written_frame() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(dir.path(), EmbeddedOptions::default()).unwrap();
    log.create_topic(&TopicSpec::new("tail", 1)).await.unwrap();
    // Sizes around the reader's 256 KiB chunk and far below it.
    let sizes = [10usize, 300, 4_000, 200_000, 262_100, 262_200, 700_000, 50];
    let total = 400usize;
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..total {
                let size = sizes[i % sizes.len()];
                let value = vec![b'a' + (i % 26) as u8; size];
                log.append("tail", vec![NewRecord::new(format!("k{i}"), value)])
                    .await
                    .unwrap();
            }
        })
    };
    let mut readers = Vec::new();
    for r in 0..3 {
        let log = log.clone();
        readers.push(tokio::spawn(async move {
            let mut c = log
                .consumer(ConsumerOptions::new(format!("reader-{r}"), ["tail"]))
                .await
                .unwrap();
            let mut next = 0u64;
            while (next as usize) < total {
                let batch = c
                    .poll(7, Duration::from_millis(20))
                    .await
                    .unwrap_or_else(|e| panic!("reader {r} at offset {next}: {e}"));
                for rec in batch {
                    assert_eq!(rec.offset, next);
                    let i = rec.offset as usize;
                    assert_eq!(rec.value.len(), sizes[i % sizes.len()]);
                    next += 1;
                }
            }
        }));
    }
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
}
