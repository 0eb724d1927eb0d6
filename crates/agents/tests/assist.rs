//! The assist pipeline end to end on a real embedded log: intents, the
//! card and loan agents in parallel with their tools, the critic, answers
//! recorded on agent.executions, and personal data masked before it is
//! recorded or returned, with an alert that does not carry it.

mod common;

use ultracore_agents::Intent;
use ultracore_log::testing::all_records;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_part_question_is_answered_by_two_agents_with_their_tools() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (log, store) = common::store(dir.path())?;
    common::card_account(
        &store,
        "c-1",
        &[
            ("t1", "Grocer", 120.40),
            ("t2", "Call 0412 345 678 for refunds", 80.0),
        ],
    )
    .await?;
    let assistant = common::assistant(dir.path(), &log, store).await?;
    let reply = assistant
        .assist(
            Some("c-1"),
            "check my balance and also show loan options with $50,000 down payment",
            &[],
        )
        .await?;
    assert_eq!(reply.intents, [Intent::Card, Intent::Loan]);
    let card = &reply.answers[0];
    assert!(card.passed, "{:?}", card.critic);
    assert!(card.text.contains("$200.40"), "{}", card.text);
    assert!(card.text.contains("$5,799.60"), "{}", card.text);
    assert_eq!(card.tools, ["card_account"]);
    // In the text, in the transaction list of the answer's data, and in
    // what the card_account tool returned.
    assert_eq!(card.masked, ["PHONE_NUMBER"; 3]);
    assert!(!reply.text.contains("0412 345 678") && reply.text.contains("<PHONE_NUMBER>"));
    let loan = &reply.answers[1];
    assert!(loan.passed, "{:?}", loan.critic);
    assert_eq!(loan.tools, ["lvr", "repayment"]);
    assert!(loan.text.contains("$50,000.00 deposit"), "{}", loan.text);

    // Both executions are on the log, masked; the alert names the entity only.
    let executions = all_records(&log, "agent.executions").await;
    assert_eq!(executions.len(), 2);
    let alerts = all_records(&log, "compliance.alerts").await;
    assert_eq!(alerts.len(), 3);
    for r in executions.iter().chain(&alerts) {
        let text = String::from_utf8_lossy(&r.value);
        assert!(
            !text.contains("0412 345 678") && !text.contains("0412345678"),
            "{text}"
        );
    }
    assert!(String::from_utf8_lossy(&alerts[0].value).contains("\"action\":\"masked\""));

    // The same question again: answered from the cache, no new execution.
    let again = assistant
        .assist(
            Some("c-1"),
            "check my balance and also show loan options with $50,000 down payment",
            &[],
        )
        .await?;
    assert!(again.answers.iter().all(|a| a.cached));
    assert_eq!(all_records(&log, "agent.executions").await.len(), 2);

    // Nothing for the agents: the general answer, no execution.
    let general = assistant
        .assist(None, "what are your opening hours?", &[])
        .await?;
    assert_eq!(general.intents, [Intent::General]);
    assert!(general.answers.is_empty() && general.text.contains("13 22 65"));
    assert!(assistant.assist(None, "  ", &[]).await.is_err());

    // A loan question with no figures is answered with the product, from
    // its tool; a card question without a customer asks who is asking.
    let plain = assistant
        .assist(
            None,
            "what's my balance, and what home loans do you have?",
            &[],
        )
        .await?;
    assert_eq!(plain.intents, [Intent::Card, Intent::Loan]);
    for answer in &plain.answers {
        assert!(answer.passed, "{}: {:?}", answer.agent_id, answer.critic);
    }
    assert!(
        plain.answers[0].text.contains("customer id"),
        "{}",
        plain.answers[0].text
    );
    assert_eq!(plain.answers[1].tools, ["loan_product"]);
    assert!(
        plain.answers[1].text.contains("6.09 %"),
        "{}",
        plain.answers[1].text
    );
    Ok(())
}
