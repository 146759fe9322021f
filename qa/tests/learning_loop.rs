//! The learning loop on a simulated campaign with injected bot failures: retraining with the QA
//! labels (bot-lost calls left out) ranks held-out customers better than retraining on the raw
//! outcomes, read against the customers' true outcomes. Prints
//! `loop.lift_gain_with_qa_labels=` for BENCHMARKS.md.
#![allow(clippy::print_stdout)]

use qa::learning::{simulate, LoopSimulation};

#[test]
fn qa_labels_improve_the_retrained_model() {
    let sim = LoopSimulation::default();
    let r = simulate(&sim).expect("simulation");
    println!(
        "loop.lift_gain_with_qa_labels={:.3} loop.auc_gain_with_qa_labels={:.4} \
         (lift {:.2} -> {:.2}, AUC {:.4} -> {:.4}; {} campaign calls, {} lost to injected bot \
         failures, {} held-out customers)",
        r.lift_gain(),
        r.auc_gain(),
        r.without_qa.lift_top10,
        r.with_qa.lift_top10,
        r.without_qa.auc,
        r.with_qa.auc,
        r.campaign_calls,
        r.bot_failures,
        r.held_out
    );
    assert!(r.bot_failures > sim.campaign_calls / 10, "{r:?}");
    assert!(
        r.auc_gain() > 0.0 || r.lift_gain() > 0.0,
        "QA labels did not help: {r:?}"
    );
    assert!(r.with_qa.auc > 0.6, "{r:?}");
    // Seeded: the same again.
    assert_eq!(r, simulate(&sim).expect("simulation"));
}
