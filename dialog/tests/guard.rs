//! The guard and semantic check in front of LLM phrasing: deliberately bad replies (an invented
//! price, a wrong number, a swapped subject, a flipped negation, the wrong day, a leaked prompt,
//! the wrong language) are rejected by the right check; faithful paraphrases pass. Runs with
//! the real MiniLM embedder (models/all-MiniLM-L6-v2) and with the fake one.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

mod common;

use common::bert;
use dialog::policy::{Check, Guard, GuardConfig};
use retrieval::{Embedder, FakeEmbedder, Language};
use std::sync::Arc;

const FACTS: [&str; 4] = [
    "39 dollars a month",
    "15 percent",
    "33.15 dollars a month",
    "the first 12 months",
];
const DISCOUNT: &str =
    "I can offer you 15 percent off for the first 12 months, which brings it to 33.15 dollars a month.";
const CALLBACK: &str =
    "Thank you. I will call you back tomorrow afternoon at 3 pm. Have a good day.";
const DNC: &str = "Of course. I have removed your number from our call list, and we will not call you again. Goodbye.";

fn guards() -> Vec<Guard> {
    let embedders: [Option<Arc<dyn Embedder>>; 2] =
        [Some(bert()), Some(Arc::new(FakeEmbedder::default()))];
    embedders
        .into_iter()
        .map(|e| Guard::new(GuardConfig::default(), e))
        .collect()
}

fn paraphrase(guard: &Guard, reply: &str, template: &str, language: Language) -> Result<(), Check> {
    guard
        .check_paraphrase(
            reply,
            template,
            &FACTS,
            "Rephrase the line. Customer: hi",
            language,
        )
        .map_err(|r| r.check)
}

#[test]
fn bad_english_paraphrases_are_rejected_by_the_right_check() {
    let cases = [
        // An invented price.
        (DISCOUNT, "I can offer you 15 percent off for the first 12 months, which brings it to 29 dollars a month.", Check::Number),
        // The caller's injected 90%.
        (DISCOUNT, "I can offer you 90 percent off for the first 12 months, which brings it to 33.15 dollars a month.", Check::Number),
        (DISCOUNT, "I can offer you ninety percent off for the first 12 months, so 33.15 dollars a month.", Check::Number),
        // A freebie.
        (DISCOUNT, "I can offer you 15 percent off for the first 12 months and it is free after that, 33.15 dollars a month.", Check::PriceClaim),
        // A dropped fact.
        (DISCOUNT, "I can offer you a nice reduction for the first 12 months, which brings it down for you.", Check::Number),
        // Subject swapped: the customer is asked to call.
        (CALLBACK, "Thank you. You will call me back tomorrow afternoon at 3 pm. Have a good day.", Check::Subject),
        // The day changed.
        (CALLBACK, "Thank you. I will call you back today in the afternoon at 3 pm. Have a good day.", Check::DayWord),
        // A negation dropped: the do-not-call promise inverted.
        (DNC, "Of course. I have removed your number from our call list, and we will call you again. Goodbye.", Check::Negation),
        // The prompt leaked.
        (CALLBACK, "Rephrase the line: thank you, I will call you back tomorrow afternoon at 3 pm.", Check::LeakedPrompt),
        // Wrong language.
        (CALLBACK, "谢谢您，我明天下午3点给您回电话。祝您愉快。", Check::Language),
    ];
    for guard in guards() {
        for (template, reply, want) in cases {
            assert_eq!(
                paraphrase(&guard, reply, template, Language::En),
                Err(want),
                "{reply}"
            );
        }
    }
}

#[test]
fn bad_chinese_paraphrases_are_rejected() {
    let template = "好的，我明天下午3点再给您回电话。祝您生活愉快。";
    let cases = [
        (
            "好的，我今天下午3点再给您回电话。祝您生活愉快。",
            Check::DayWord,
        ),
        (
            "好的，您明天下午3点再给我回电话。祝您生活愉快。",
            Check::Subject,
        ),
        (
            "好的，我明天下午4点再给您回电话。祝您生活愉快。",
            Check::Number,
        ),
        (
            "好的，我明天下午3点再给您回电话，给您打一折。",
            Check::Number,
        ),
        (
            "好的，我明天下午3点不给您回电话。祝您生活愉快。",
            Check::Negation,
        ),
        (
            "OK, I will call you tomorrow at 3 pm, have a nice day.",
            Check::Language,
        ),
    ];
    for guard in guards() {
        for (reply, want) in cases {
            assert_eq!(
                paraphrase(&guard, reply, template, Language::Zh),
                Err(want),
                "{reply}"
            );
        }
    }
}

#[test]
fn faithful_paraphrases_pass_with_the_real_embedder() {
    let guard = Guard::new(GuardConfig::default(), Some(bert()));
    let ok = [
        (CALLBACK, "Thanks. I will give you a call back tomorrow afternoon at 3 pm. Have a nice day."),
        (DISCOUNT, "I can give you 15 percent off for the first 12 months, bringing it to 33.15 dollars a month."),
    ];
    for (template, reply) in ok {
        assert_eq!(
            paraphrase(&guard, reply, template, Language::En),
            Ok(()),
            "{reply}"
        );
    }
    let zh = "好的，我明天下午3点再给您回电话。祝您生活愉快。";
    assert_eq!(
        paraphrase(
            &guard,
            "好的，我明天下午3点再给您打电话。祝您生活愉快。",
            zh,
            Language::Zh
        ),
        Ok(())
    );
}

#[test]
fn openers_carry_no_content() {
    let guard = Guard::new(GuardConfig::default(), Some(bert()));
    let prompt = "Write a short acknowledgement. Customer: it's too expensive";
    for ok in ["I see.", "Thanks for asking.", "I understand."] {
        assert_eq!(guard.check_opener(ok, prompt, Language::En), Ok(()), "{ok}");
    }
    for (bad, want) in [
        ("Sure, 90% off!", Check::Number),
        ("I'll call you tomorrow.", Check::DayWord),
        ("No, we can't.", Check::Negation),
        ("It's free for you.", Check::PriceClaim),
        ("I will send it now.", Check::OpenerContent),
        (
            "I understand. Let me explain everything about the plan to you now.",
            Check::Length,
        ),
    ] {
        assert_eq!(
            guard
                .check_opener(bad, prompt, Language::En)
                .map_err(|r| r.check),
            Err(want),
            "{bad}"
        );
    }
    assert_eq!(guard.check_opener("好的。", prompt, Language::Zh), Ok(()));
    assert_eq!(
        guard
            .check_opener("好的，给您打一折。", prompt, Language::Zh)
            .map_err(|r| r.check),
        Err(Check::Number)
    );
}
