//! The five paper variants must reproduce the paper's parameter counts (±0.5%).
use lm::{Preset, Weights};

#[test]
fn parameter_counts_match_paper() {
    for p in Preset::ALL {
        let cfg = p.config();
        cfg.validate().unwrap();
        let Some(paper) = p.paper_parameter_count() else { continue };
        let ours = cfg.parameter_count() as f64;
        let rel = (ours - paper).abs() / paper;
        println!("{p}: {ours} vs paper {paper} ({:+.3}%)", 100.0 * (ours - paper) / paper);
        assert!(rel <= 0.005, "{p}: {ours} params vs paper {paper} ({:.2}% off)", rel * 100.0);
    }
}

#[test]
fn released_512_8_layout() {
    let c = Preset::from_name("512-8").unwrap().config();
    assert_eq!((c.hidden, c.layers, c.heads, c.kv_heads, c.intermediate, c.vocab), (512, 8, 8, 2, 1408, 12_288));
    assert_eq!(c.head_dim(), 64);
    assert_eq!(c.rope_theta, 1e6);
    assert_eq!(c.rms_eps, 1e-5);
}

#[test]
fn random_init_has_the_counted_parameters() {
    let cfg = Preset::M256x8.config();
    let w = Weights::random_init(&cfg, 1).unwrap();
    let n: usize = w.tensors.values().map(|t| t.elem_count()).sum();
    assert_eq!(n, cfg.parameter_count());
}
