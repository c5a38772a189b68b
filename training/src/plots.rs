//! SVG plots: ROC curve, confusion matrix, loss and accuracy per epoch.
//!
//! Written as plain SVG so they render anywhere (browsers, GitHub) without a font library.

use crate::train::EpochRecord;
use std::fmt::Write;

const W: f64 = 480.0;
const H: f64 = 360.0;
const M: f64 = 50.0; // margin for axes and labels
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];

fn header(title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        W / 2.0,
        escape(title)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A line chart of named series over a shared x range, with axes and a legend.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    x: (f64, f64),
    y: (f64, f64),
    series: &[(&str, Vec<(f64, f64)>)],
) -> String {
    let (pw, ph) = (W - 2.0 * M, H - 2.0 * M);
    let sx = |v: f64| M + (v - x.0) / (x.1 - x.0).max(1e-12) * pw;
    let sy = |v: f64| H - M - (v - y.0) / (y.1 - y.0).max(1e-12) * ph;
    let mut s = header(title);
    let _ = writeln!(
        s,
        "<rect x=\"{M}\" y=\"{M}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#444\"/>"
    );
    for i in 0..=4 {
        let (vx, vy) = (
            x.0 + (x.1 - x.0) * i as f64 / 4.0,
            y.0 + (y.1 - y.0) * i as f64 / 4.0,
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            sx(vx),
            H - M + 16.0,
            fmt_tick(vx)
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            M - 6.0,
            sy(vy) + 4.0,
            fmt_tick(vy)
        );
        let _ = writeln!(
            s,
            "<line x1=\"{M}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            W - M,
            sy(vy),
            sy(vy)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        W / 2.0,
        H - 12.0,
        escape(x_label)
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        H / 2.0,
        escape(y_label)
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{:.2},{:.2}", sx(*a), sy(*b)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        if pts.len() <= 50 {
            for (a, b) in pts {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.2}\" cy=\"{:.2}\" r=\"3\" fill=\"{c}\"/>",
                    sx(*a),
                    sy(*b)
                );
            }
        }
        let ly = M + 16.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"3\"/>",
            W - M - 150.0,
            W - M - 130.0
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            W - M - 124.0,
            ly + 4.0,
            escape(name)
        );
    }
    s + "</svg>\n"
}

fn fmt_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 && v.abs() >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The ROC curve with its AUC in the legend.
pub fn roc(points: &[(f64, f64)], auc: f64, split: &str) -> String {
    let diag = vec![(0.0, 0.0), (1.0, 1.0)];
    line_chart(
        &format!("ROC curve ({split} split)"),
        "false positive rate",
        "true positive rate",
        (0.0, 1.0),
        (0.0, 1.0),
        &[
            (&format!("AUC = {auc:.4}"), points.to_vec()),
            ("chance", diag),
        ],
    )
}

/// A named line of points.
pub type Curve = (String, Vec<(f64, f64)>);

/// Reliability curves: mean score against the share of phishing rows per score bin, one line per
/// model (a calibrated model lies on the diagonal).
pub fn reliability(set: &str, curves: &[Curve]) -> String {
    let mut series: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    series.push(("calibrated", vec![(0.0, 0.0), (1.0, 1.0)]));
    line_chart(
        &format!("Reliability ({set})"),
        "mean score in bin",
        "share of phishing in bin",
        (0.0, 1.0),
        (0.0, 1.0),
        &series,
    )
}

/// Loss and accuracy per epoch, training and validation.
pub fn history(h: &[EpochRecord]) -> String {
    let n = h.len().max(2) as f64;
    let pick =
        |f: fn(&EpochRecord) -> f64| h.iter().map(|r| (r.epoch as f64, f(r))).collect::<Vec<_>>();
    let all: Vec<f64> = h
        .iter()
        .flat_map(|r| [r.train_loss, r.val_loss, r.train_accuracy, r.val_accuracy])
        .collect();
    let ymax = all.iter().cloned().fold(1.0, f64::max);
    line_chart(
        "Loss and accuracy per epoch",
        "epoch",
        "value",
        (1.0, n),
        (0.0, ymax),
        &[
            ("train loss", pick(|r| r.train_loss)),
            ("val loss", pick(|r| r.val_loss)),
            ("train accuracy", pick(|r| r.train_accuracy)),
            ("val accuracy", pick(|r| r.val_accuracy)),
        ],
    )
}

/// The confusion matrix as a 2x2 heat map with counts and row shares.
pub fn confusion(cm: [[usize; 2]; 2], split: &str) -> String {
    let mut s = header(&format!("Confusion matrix ({split} split)"));
    let names = ["legitimate", "phishing"];
    let (x0, y0, cell) = (150.0, 70.0, 120.0);
    for (t, row) in cm.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let (x, y) = (x0 + p as f64 * cell, y0 + t as f64 * cell);
            let shade = (255.0 - share * 200.0) as u8;
            let _ = writeln!(s, "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({shade},{shade},255)\" stroke=\"#444\"/>");
            let fg = if share > 0.6 { "white" } else { "black" };
            let _ = writeln!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"18\" fill=\"{fg}\">{count}</text>", x + cell / 2.0, y + cell / 2.0);
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{fg}\">{:.1}%</text>",
                x + cell / 2.0,
                y + cell / 2.0 + 20.0,
                share * 100.0
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            x0 - 8.0,
            y0 + t as f64 * cell + cell / 2.0,
            names[t]
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x0 + t as f64 * cell + cell / 2.0,
            y0 - 8.0,
            names[t]
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">predicted</text>",
        x0 + cell,
        y0 + 2.0 * cell + 24.0
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate(30 {}) rotate(-90)\" text-anchor=\"middle\">true</text>",
        y0 + cell
    );
    s + "</svg>\n"
}
