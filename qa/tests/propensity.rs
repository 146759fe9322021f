//! Propensity models on the real Caravan insurance data (CoIL 2000, from the ISLP wheel that
//! scripts/setup.sh unpacks into models/data), on the seeded held-out split; bad inputs from
//! tests/data/propensity_bad; save/load; the model registry's promotion rule.

use qa::propensity::{
    self, read_csv, Dataset, ModelKind, PropensityError, PropensityModel, TrainOptions,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn caravan_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/data/caravan.csv");
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh (it unpacks the Caravan data from the islp wheel)",
        path.display()
    );
    path
}

fn caravan() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        read_csv(&caravan_path(), "customer_id", Some("Purchase")).expect("caravan.csv reads")
    })
}

/// Both learners trained once on the default split, shared by the tests of this file.
fn trained() -> &'static propensity::TrainReport {
    static REPORT: OnceLock<propensity::TrainReport> = OnceLock::new();
    REPORT.get_or_init(|| {
        propensity::train(
            caravan(),
            "customer_id",
            "Purchase",
            &TrainOptions::default(),
            &mut |_| {},
        )
        .expect("training on caravan")
    })
}

#[test]
fn caravan_reads_whole() {
    let d = caravan();
    assert_eq!(d.rows(), 5822);
    assert_eq!(d.cols(), 85);
    assert_eq!(d.positives(), 348);
}

#[test]
fn both_models_beat_a_trivial_baseline_with_sane_probabilities() {
    let report = trained();
    assert_eq!(report.models.len(), 2);
    for m in &report.models {
        let x = &m.card.metrics;
        let name = m.kind().as_str();
        // A constant score has AUC 0.5 and lift 1; predicting the base rate has Brier p(1-p).
        assert!(x.auc > 0.68, "{name}: AUC {}", x.auc);
        assert!(x.lift_top10 > 1.8, "{name}: lift {}", x.lift_top10);
        assert!(
            x.brier < x.base_rate * (1.0 - x.base_rate),
            "{name}: Brier {} vs base {}",
            x.brier,
            x.base_rate * (1.0 - x.base_rate)
        );
        // Calibrated: the mean probability is near the held-out purchase rate, and no decile is
        // far off on average.
        assert!(
            (x.mean_predicted - x.base_rate).abs() < 0.02,
            "{name}: mean {} vs rate {}",
            x.mean_predicted,
            x.base_rate
        );
        assert!(x.ece < 0.03, "{name}: ECE {}", x.ece);
        assert_eq!(x.rows, 1456);
        assert_eq!(x.positives, 87);
    }
}

#[test]
fn the_split_is_seeded_and_stratified() {
    let d = caravan();
    let a = propensity::stratified(&d.labels, 2000, 0.25, 0.2);
    assert_eq!(a, propensity::stratified(&d.labels, 2000, 0.25, 0.2));
    let rate =
        |idx: &[usize]| idx.iter().filter(|&&i| d.labels[i]).count() as f64 / idx.len() as f64;
    for part in [&a.train, &a.calibrate, &a.test] {
        assert!((rate(part) - 348.0 / 5822.0).abs() < 0.002);
    }
}

#[test]
fn save_and_load_give_identical_scores() {
    let report = trained();
    let test = caravan().subset(&report.split.test);
    for m in &report.models {
        let dir = tempfile::tempdir().expect("tempdir");
        let sha = m.save(dir.path()).expect("save");
        for f in [
            "model.json",
            "features.json",
            "meta.json",
            "metrics.json",
            "sha256",
        ] {
            assert!(dir.path().join(f).exists(), "{f} written");
        }
        let loaded = PropensityModel::load(dir.path()).expect("load");
        assert_eq!(PropensityModel::saved_sha256(dir.path()).expect("sha"), sha);
        let (a, b) = (
            m.score(&test).expect("score"),
            loaded.score(&test).expect("score"),
        );
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{}: scores differ after a round trip",
            m.kind().as_str()
        );
        // Columns in another order score the same; a missing column is a clear error.
        let mut names = test.feature_names.clone();
        names.reverse();
        let shuffled = test.select(&names).expect("select");
        assert_eq!(loaded.score(&shuffled).expect("score"), b);
        let narrow = test.select(&names[1..]).expect("select");
        let err = loaded.score(&narrow).expect_err("a feature is missing");
        assert!(
            err.to_string().contains(&format!("missing {}", names[0])),
            "{err}"
        );
        // A changed weight file is refused, not silently used.
        let model_file = dir.path().join("model.json");
        let mut text = std::fs::read_to_string(&model_file).expect("read");
        text.push(' ');
        std::fs::write(&model_file, text).expect("write");
        let err = PropensityModel::load(dir.path()).expect_err("tampered");
        assert!(
            err.to_string().contains("changed since they were saved"),
            "{err}"
        );
    }
}

#[test]
fn bad_inputs_each_give_their_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/propensity_bad");
    let cases = std::fs::read_to_string(dir.join("cases.txt")).expect("cases.txt");
    let mut n = 0;
    for line in cases
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (file, want) = line.split_once('|').expect("file | message");
        let (file, want) = (file.trim(), want.trim());
        let err = read_csv(&dir.join(file), "customer_id", Some("Purchase"))
            .expect_err(&format!("{file} must be refused"));
        assert!(
            err.to_string().contains(want),
            "{file}: got `{err}`, want `{want}`"
        );
        n += 1;
    }
    assert!(n >= 8, "{n} cases");
    let err = read_csv(
        &dir.join("does_not_exist.csv"),
        "customer_id",
        Some("Purchase"),
    )
    .expect_err("missing file");
    assert!(matches!(err, PropensityError::Io { .. }), "{err}");
}

#[test]
fn too_few_buyers_to_split_is_an_error() {
    let d = caravan();
    // 20 buyers: too few for three parts with 10 each.
    let mut keep: Vec<usize> = (0..d.rows()).filter(|&i| !d.labels[i]).take(500).collect();
    keep.extend((0..d.rows()).filter(|&i| d.labels[i]).take(20));
    let small = d.subset(&keep);
    let opts = TrainOptions {
        kinds: vec![ModelKind::Logistic],
        ..TrainOptions::default()
    };
    let err = propensity::train(&small, "customer_id", "Purchase", &opts, &mut |_| {})
        .expect_err("too few");
    assert!(
        matches!(err, PropensityError::TooFewPositives { .. }),
        "{err}"
    );
}

#[test]
fn a_version_is_promoted_only_when_it_beats_the_active_one() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = retrieval::SqlStore::connect(&format!(
            "sqlite://{}",
            tmp.path().join("db.sqlite").display()
        ))
        .await
        .expect("store");
        let report = trained();
        let d = caravan();
        let held_out = d.subset(&report.split.test);
        let strong = report.best();
        let strong_dir = tmp.path().join("strong");
        strong.save(&strong_dir).expect("save");
        let p = propensity::register(&store, strong, &strong_dir, &held_out, 1)
            .await
            .expect("register");
        assert!(p.promoted, "{}", p.reason);

        // A weak model: a logistic regression on three columns of little use.
        let few: Vec<String> = ["MAANTHUI", "MGODRK", "MGODOV"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let opts = TrainOptions {
            kinds: vec![ModelKind::Logistic],
            ..TrainOptions::default()
        };
        let weak = propensity::train(
            &d.select(&few).expect("select"),
            "customer_id",
            "Purchase",
            &opts,
            &mut |_| {},
        )
        .expect("train");
        let weak_dir = tmp.path().join("weak");
        weak.best().save(&weak_dir).expect("save");
        let p = propensity::register(&store, weak.best(), &weak_dir, &held_out, 2)
            .await
            .expect("register");
        assert!(!p.promoted, "{}", p.reason);
        assert!(p.previous.is_some_and(|(_, auc)| auc > p.auc));
        let (active, model) = propensity::active_model(&store)
            .await
            .expect("active")
            .expect("one is active");
        assert_eq!(model.kind(), strong.kind());
        assert!(active.version.starts_with(strong.kind().as_str()));
    });
}
