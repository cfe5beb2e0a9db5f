//! The chart of `shmarena bench --svg`: total Mops/s against processes, one line per
//! workload, on a log scale (the workloads span four orders of magnitude). Plain SVG,
//! written by hand: no plotting dependency for a dozen lines and dots.

use std::fmt::Write as _;

use crate::bench::Row;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;

/// Distinct, readable line colours (cycled).
const COLOURS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// An SVG line chart of `rows`.
pub fn svg(rows: &[Row], title: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        if !names.contains(&row.workload.name()) {
            names.push(row.workload.name());
        }
    }
    let max_procs = rows.iter().map(|r| r.procs).max().unwrap_or(1).max(2) as f64;
    let positive = rows.iter().map(|r| r.total_mops).filter(|m| *m > 0.0);
    let low = positive
        .clone()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3)
        .log10()
        .floor();
    let high = positive
        .fold(0.0, f64::max)
        .max(1e-2)
        .log10()
        .ceil()
        .max(low + 1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // Processes on a log2 axis: 1, 2, 4, ... evenly spaced.
    let x = |procs: usize| LEFT + (procs as f64).log2() / max_procs.log2() * plot_w;
    let y = |mops: f64| TOP + (high - mops.max(1e-3).log10()) / (high - low) * plot_h;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="18" font-size="14">{}</text>"#,
        escape(title)
    );
    // Grid: decades of Mops/s, and the process counts.
    for decade in (low as i32)..=(high as i32) {
        let yy = y(10f64.powi(decade));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            10f64.powi(decade)
        );
    }
    let mut procs: Vec<usize> = rows.iter().map(|r| r.procs).collect();
    procs.sort_unstable();
    procs.dedup();
    for &p in &procs {
        let xx = x(p);
        let _ = writeln!(
            out,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{p}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">processes (peers: threads)</text><text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">total M ops/s (log)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0,
        TOP + plot_h / 2.0
    );
    for (index, name) in names.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let dash = if index >= COLOURS.len() {
            r#" stroke-dasharray="5,3""#
        } else {
            ""
        };
        let points: Vec<String> = rows
            .iter()
            .filter(|r| r.workload.name() == *name)
            .map(|r| format!("{:.1},{:.1}", x(r.procs), y(r.total_mops)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
            points.join(" ")
        );
        let ly = TOP + 14.0 * index as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            WIDTH - RIGHT + 15.0,
            WIDTH - RIGHT + 35.0,
            WIDTH - RIGHT + 40.0,
            ly + 4.0,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
