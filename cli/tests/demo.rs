//! `tora demo` against `tora up`, as a user runs them: each step of the story (a sponsored
//! first operation, the next one paid in TORA with a permit, inference paid with vouchers and
//! redeemed) lands and adds up, and a second run, with a new wallet, does too.

mod common;

use common::tora_up;
use std::process::{Command, Output};

/// The transaction hash a line names after `tx `, checked to be 32 bytes of hex.
fn tx_in(line: &str) -> &str {
    let at = line.find("tx 0x").unwrap_or_else(|| panic!("no transaction in {line:?}")) + 3;
    let hash = &line[at..at + 66.min(line.len() - at)];
    assert!(hash.len() == 66 && hash[2..].chars().all(|c| c.is_ascii_hexdigit()), "{line:?}");
    hash
}

/// Checks one run: it exited 0, and each step printed its result with its transaction.
/// Returns the new wallet's address the run told the story of.
fn told(run: &Output) -> String {
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "tora demo failed ({}):\n{stdout}\n{stderr}", run.status);
    let txs: std::collections::BTreeSet<&str> = (1..=3)
        .map(|step| {
            let prefix = format!("  => step {step} ok");
            let line = stdout.lines().find(|l| l.starts_with(&prefix));
            tx_in(line.unwrap_or_else(|| panic!("no {prefix:?} in:\n{stdout}")))
        })
        .collect();
    assert_eq!(txs.len(), 3, "each step lands in a transaction of its own: {txs:?}");
    assert!(stdout.contains("\nEvery step added up, to the wei"), "{stdout}");
    let setup = stdout.lines().find_map(|l| l.strip_prefix("Setup: a new ToraAccount "));
    setup.and_then(|rest| rest.split_whitespace().next()).expect("the run names its wallet").to_owned()
}

#[test]
fn tora_demo_tells_the_whole_story_on_tora_up_and_again_with_a_new_wallet() {
    let out = std::env::temp_dir().join(format!("tora-demo-test-{}.json", std::process::id()));
    let (up, urls) = tora_up(&out);
    let demo = || {
        Command::new(env!("CARGO_BIN_EXE_tora"))
            .arg("demo")
            .arg("--deployment")
            .arg(&out)
            .args(["--bundler-url", &urls["bundler"], "--paymaster-url", &urls["paymaster"]])
            .args(["--gateway-url", &urls["gateway"]])
            .output()
            .unwrap()
    };
    let (first, second) = (demo(), demo());
    drop(up);
    let _ = std::fs::remove_file(&out);
    assert_ne!(told(&first), told(&second), "each run makes a new wallet");
}
