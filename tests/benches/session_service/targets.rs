//! The performance targets of the storage hot path, each checked against the figure the same
//! run measured, printed last as one line per target.

use std::time::Duration;

use crate::{
    load::Window,
    report::{duration, print_columns, server_cpu, thousands},
};

/// The windows' median server CPU per call against `limit`.
pub fn server_cpu_check(server: &str, what: &str, windows: &[Window], limit: Duration) -> Check {
    Check::time(server, what, server_cpu(windows), limit, false)
}

#[derive(Debug)]
pub struct Check {
    pub server: String,
    pub what: String,
    pub figure: String,
    pub goal: String,
    /// `None` when the figure could not be measured (no pgbench, a failed window).
    pub met: Option<bool>,
}

impl Check {
    /// A time (CPU per call, latency) that must not exceed `limit` (strictly below when
    /// `strict`).
    pub fn time(
        server: &str,
        what: &str,
        figure: Option<Duration>,
        limit: Duration,
        strict: bool,
    ) -> Self {
        Self {
            server: server.to_owned(),
            what: what.to_owned(),
            figure: figure.map_or_else(|| "not measured".into(), duration),
            goal: format!("{} {}", if strict { "<" } else { "<=" }, duration(limit)),
            met: figure.map(|f| if strict { f < limit } else { f <= limit }),
        }
    }

    /// A rate that must reach `floor` calls per second.
    pub fn rate(server: &str, what: &str, figure: f64, floor: f64) -> Self {
        let measured = figure.is_finite();
        Self {
            server: server.to_owned(),
            what: what.to_owned(),
            figure: if measured {
                format!("{} /s", thousands(figure))
            } else {
                "not measured".into()
            },
            goal: format!(">= {} /s", thousands(floor)),
            met: measured.then_some(figure >= floor),
        }
    }

    /// A ratio that must be at least `floor` (`at_least`) or at most `ceiling`; `detail` says
    /// what was divided by what.
    pub fn ratio(
        server: &str,
        what: &str,
        figure: Option<f64>,
        bound: Bound,
        detail: &str,
    ) -> Self {
        let figure = figure.filter(|f| f.is_finite());
        let (goal, met) = match bound {
            Bound::AtLeast(floor) => (format!(">= {floor:.2}"), figure.map(|f| f >= floor)),
            Bound::AtMost(ceiling) => (format!("<= {ceiling:.2}"), figure.map(|f| f <= ceiling)),
        };
        Self {
            server: server.to_owned(),
            what: what.to_owned(),
            figure: figure.map_or_else(
                || format!("not measured{}", if detail.is_empty() { "" } else { ": " }) + detail,
                |f| format!("{f:.2} ({detail})"),
            ),
            goal,
            met,
        }
    }

    /// A figure reported beside the targets, with no target of its own.
    pub fn report(server: &str, what: &str, figure: String) -> Self {
        Self {
            server: server.to_owned(),
            what: what.to_owned(),
            figure,
            goal: "(reported)".into(),
            met: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

pub fn print_summary(checks: &[Check], quick: bool) {
    println!(
        "Targets{}: figure measured in this run beside its floor or target.",
        if quick {
            " (--quick: short windows and small sizes, so figures are indicative only)"
        } else {
            ""
        }
    );
    let lines: Vec<Vec<String>> = checks
        .iter()
        .map(|check| {
            vec![
                check.server.clone(),
                check.what.clone(),
                check.figure.clone(),
                check.goal.clone(),
                match check.met {
                    Some(true) => "met".into(),
                    Some(false) => "NOT MET".into(),
                    None if check.goal == "(reported)" => String::new(),
                    None => "unknown".into(),
                },
            ]
        })
        .collect();
    print_columns(
        &["server", "target", "figure", "floor / target", "met"],
        &lines,
        &[],
    );
    let counted: Vec<bool> = checks.iter().filter_map(|c| c.met).collect();
    println!(
        "{} of {} targets met",
        counted.iter().filter(|m| **m).count(),
        counted.len()
    );
}
