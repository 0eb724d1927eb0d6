use super::*;

fn found(text: &str) -> Vec<(Entity, &str)> {
    Scanner::new()
        .scan(text)
        .into_iter()
        .map(|f| (f.entity, &text[f.start..f.end]))
        .collect()
}

#[test]
fn cards_in_their_printed_formats() {
    // Luhn-valid numbers that are not published test numbers.
    assert_eq!(
        found("Charge the Visa 4539 1488 0343 6467 today."),
        [(Entity::CreditCard, "4539 1488 0343 6467")]
    );
    assert_eq!(
        found("card: 4539-1488-0343-6467"),
        [(Entity::CreditCard, "4539-1488-0343-6467")]
    );
    assert_eq!(
        found("pay with 4539148803436467"),
        [(Entity::CreditCard, "4539148803436467")]
    );
    assert_eq!(
        found("Amex 3478 123456 78908 on file"),
        [(Entity::CreditCard, "3478 123456 78908")]
    );
}

#[test]
fn near_misses_and_test_cards_are_not_cards() {
    assert!(found("card 4539 1488 0343 6468").is_empty(), "Luhn fails");
    assert!(found("card 4111 1111 1111 1111").is_empty(), "a test card");
    assert!(
        found("card 9539 1488 0343 6467").is_empty(),
        "no such network"
    );
    assert!(
        found("card 4539 1488 0343-6467").is_empty(),
        "mixed separators"
    );
}

#[test]
fn australian_identifiers_by_checksum_and_format() {
    assert_eq!(
        found("My TFN is 123 456 782."),
        [(Entity::AuTfn, "123 456 782")]
    );
    assert_eq!(
        found("tax file number 123456782"),
        [(Entity::AuTfn, "123456782")]
    );
    assert!(found("My TFN is 123 456 783.").is_empty());
    assert!(
        found("please quote 123456782 when you call").is_empty(),
        "nine bare digits without a cue are not a TFN"
    );
    assert_eq!(
        found("ABN 51 824 753 556"),
        [(Entity::AuAbn, "51 824 753 556")]
    );
    assert!(found("ABN 51 824 753 557").is_empty());
    assert_eq!(
        found("Medicare card 2123 45670 1 expires 03/27"),
        [(Entity::AuMedicare, "2123 45670 1")]
    );
    assert!(found("Medicare card 2123 45671 1").is_empty());
}

#[test]
fn ssns_by_the_ssa_rules() {
    assert_eq!(found("SSN 536-90-4399"), [(Entity::UsSsn, "536-90-4399")]);
    assert_eq!(
        found("applicant 536-90-4399"),
        [(Entity::UsSsn, "536-90-4399")]
    );
    assert_eq!(
        found("social security number 536904399"),
        [(Entity::UsSsn, "536904399")]
    );
    for bad in [
        "000-90-4399",
        "666-90-4399",
        "936-90-4399",
        "536-00-4399",
        "536-90-0000",
    ] {
        assert!(found(&format!("SSN {bad}")).is_empty(), "{bad}");
    }
}

#[test]
fn ibans_electronic_and_printed() {
    assert_eq!(
        found("IBAN GB82 WEST 1234 5698 7654 32, ref 7"),
        [(Entity::IbanCode, "GB82 WEST 1234 5698 7654 32")]
    );
    assert_eq!(
        found("pay DE89370400440532013000."),
        [(Entity::IbanCode, "DE89370400440532013000")]
    );
    assert!(
        found("IBAN GB82 WEST 1234 5698 7654 33").is_empty(),
        "mod 97 fails"
    );
    assert!(found("ISIN US0378331005 and AU000000BHP4").is_empty());
    assert!(found("GB82WEST12345698765432X").is_empty(), "too long");
    // Not an IBAN (mod 97 fails), and its Luhn-valid digits are no card.
    assert!(found("IBAN AT74 2444 5479 9885 6413").is_empty());
    assert!(found("Payee IBAN: IT38 D992 4205 9643 6371 9487 693").is_empty());
}

#[test]
fn emails() {
    assert_eq!(
        found("Write to jane.doe+news@example.com.au."),
        [(Entity::EmailAddress, "jane.doe+news@example.com.au")]
    );
    assert!(found("ping @jane on chat").is_empty());
    assert!(found("jane@localhost").is_empty());
    assert!(found("logo@2x.png").is_empty());
    assert!(found("jane@example.c").is_empty());
}

#[test]
fn phones_by_numbering_plan() {
    for (text, phone) in [
        ("call +61 412 345 678 now", "+61 412 345 678"),
        ("mobile 0412 345 678", "0412 345 678"),
        ("office (02) 9876 5432", "(02) 9876 5432"),
        ("ring 02 9876 5432", "02 9876 5432"),
        ("US desk (212) 555-0123", "(212) 555-0123"),
        ("US desk 212-555-0123", "212-555-0123"),
        ("+1 212 555 0123", "+1 212 555 0123"),
        ("London +44 20 7946 0958", "+44 20 7946 0958"),
        ("1300 975 707 for support", "1300 975 707"),
    ] {
        assert_eq!(found(text), [(Entity::PhoneNumber, phone)], "{text}");
    }
    for text in [
        "on 2024-03-15 at 10:30",
        "balance $1,234,567.89",
        "(123) 456-7890 has no area code 1xx",
        "BSB 062-000 account 1234 5678",
        "Order #0412 345 678 shipped",
    ] {
        assert!(found(text).is_empty(), "{text}: {:?}", found(text));
    }
}

#[test]
fn identifiers_glued_to_words_are_not_numbers() {
    assert!(found("ORD-123456782 and pf_4539148803436467").is_empty());
    assert!(found("item 123456782abc").is_empty());
}

#[test]
fn offsets_are_bytes_of_utf8_text() {
    let text = "José’s TFN — 123 456 782";
    let f = Scanner::new().scan(text);
    assert_eq!(f.len(), 1);
    assert_eq!(&text[f[0].start..f[0].end], "123 456 782");
}

#[test]
fn the_likeliest_of_overlapping_candidates_wins() {
    // An unbroken 9-digit TFN-valid number beside "SSN": the cue decides.
    let f = found("SSN 123456782");
    assert!(f.iter().all(|(e, _)| *e != Entity::AuTfn), "{f:?}");
    assert_eq!(found("TFN 123456782"), [(Entity::AuTfn, "123456782")]);
}

#[test]
fn a_lower_threshold_reports_more() {
    let text = "quote 123456782";
    assert!(Scanner::new().scan(text).is_empty());
    let all = Scanner::new()
        .min_likelihood(Likelihood::Unlikely)
        .scan(text);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].entity, Entity::AuTfn);
}
