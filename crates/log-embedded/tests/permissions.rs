//! Everything the embedded log creates in a fresh data directory is
//! readable by its owner only: files 0600, directories 0700. The same holds
//! for the decision spool, which is an embedded log of its own.

use std::time::Duration;

mod common;

use common::segment_files;
use ultracore_log::files::not_owner_only;
use ultracore_log::{Consumer, ConsumerOptions, EventLog, EventLogExt, NewRecord, TopicSpec};
use ultracore_log_embedded::{repair, EmbeddedLog, EmbeddedOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn a_fresh_data_directory_is_owner_only() -> TestResult {
    let tmp = tempfile::tempdir()?;
    // Missing parents too: the log creates the whole path.
    let dir = tmp.path().join("var/ultracore");
    let options = EmbeddedOptions {
        segment_bytes: 4096,
        ..EmbeddedOptions::default()
    };
    {
        let log = EmbeddedLog::open(&dir, options.clone())?;
        log.ensure_topic(&TopicSpec::new("t", 2)).await?;
        // Several segments, so sealed ones have index files.
        log.append(
            "t",
            (0..400)
                .map(|i| NewRecord::new(format!("k{}", i % 7), format!("record-{i:04}")))
                .collect(),
        )
        .await?;
        let mut c = log.consumer(ConsumerOptions::new("g", ["t"])).await?;
        let batch = c.poll(10, Duration::from_secs(5)).await?;
        let positions: Vec<_> = batch.iter().map(|r| r.next_position()).collect();
        c.commit(&positions).await?;
    }
    // A repair's copy of what it cut, too.
    let sealed = &segment_files(&dir, "t", 0)[1];
    let mut bytes = std::fs::read(sealed)?;
    bytes[30] ^= 1;
    std::fs::write(sealed, &bytes)?;
    assert_eq!(repair(&dir, true)?.cuts.len(), 1);
    drop(EmbeddedLog::open(&dir, options)?);

    let names: Vec<String> = std::fs::read_dir(sealed.parent().ok_or("partition")?)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    for kind in [".index", ".timeindex", ".corrupt-"] {
        assert!(
            names.iter().any(|n| n.contains(kind)),
            "no {kind} file in {names:?}"
        );
    }
    assert!(
        dir.join("groups").read_dir()?.next().is_some(),
        "no group offsets"
    );
    assert!(dir.join("LOCK").exists());
    assert_eq!(not_owner_only(&tmp.path().join("var"))?, vec![]);
    Ok(())
}
