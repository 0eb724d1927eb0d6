//! `ultracore governance scan` as a compliance team runs it over a file:
//! one JSON object per line with byte offsets, masking, bad flags refused.

use std::io::Write;
use std::process::{Command, Stdio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn scan(args: &[&str], input: &[u8]) -> Result<std::process::Output, std::io::Error> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ultracore"))
        .args(["governance", "scan"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("piped").write_all(input)?;
    child.wait_with_output()
}

#[test]
fn one_json_object_per_line_with_byte_offsets() -> TestResult {
    let input =
        "Call Zoë on 0412 345 678.\nnothing here\r\nTFN 123 456 782, card 4539 1488 0343 6467\n";
    let out = scan(&["--json"], input.as_bytes())?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 3);
    let docs: Vec<&str> = input.lines().collect();
    let mut seen = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["line"], i + 1);
        for f in line["findings"].as_array().ok_or("findings")? {
            let (start, end) = (
                f["start"].as_u64().ok_or("start")? as usize,
                f["end"].as_u64().ok_or("end")? as usize,
            );
            let doc = docs[i].trim_end_matches('\r').as_bytes();
            let value = std::str::from_utf8(&doc[start..end])?;
            seen.push((
                f["entity"].as_str().ok_or("entity")?.to_owned(),
                value.to_owned(),
            ));
            assert!(f["likelihood"].is_string() && f["recognizer"].is_string());
            // The value itself is never printed.
            assert!(!line.to_string().contains(value));
        }
    }
    assert_eq!(
        seen,
        [
            ("PHONE_NUMBER".to_owned(), "0412 345 678".to_owned()),
            ("AU_TFN".to_owned(), "123 456 782".to_owned()),
            ("CREDIT_CARD".to_owned(), "4539 1488 0343 6467".to_owned()),
        ]
    );
    Ok(())
}

#[test]
fn mask_prints_the_lines_without_the_values() -> TestResult {
    let out = scan(&["--mask"], b"mail jo@example.com or +61 412 345 678\n")?;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout)?,
        "mail <EMAIL_ADDRESS> or <PHONE_NUMBER>\n"
    );
    Ok(())
}

#[test]
fn a_bad_threshold_or_entity_says_what_to_use() -> TestResult {
    let out = scan(&["--min-likelihood", "sure"], b"")?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("very_likely"));
    let out = scan(&["--entities", "PASSPORT"], b"")?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CREDIT_CARD"));
    Ok(())
}
