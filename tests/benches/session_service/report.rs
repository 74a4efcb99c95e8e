//! Results: a row per measurement (a throughput of windows, maybe paired with a baseline's
//! windows, or a set of latencies) and the table they print as.

use std::time::Duration;

use crate::{load::Window, options::Options};

#[derive(Debug)]
pub enum Value {
    /// The call's windows, and the baseline's windows of the same rounds.
    Rate {
        windows: Vec<Window>,
        baseline: Option<(String, Vec<Window>)>,
    },
    /// Each call's latency.
    Latency(Vec<Duration>),
    /// Cells rendered elsewhere (by a child process).
    Rendered(Box<[String; 6]>),
}

#[derive(Debug)]
pub struct Row {
    /// `sqlite`, `postgres`, `sqlite+nodelay`, ...
    pub server: String,
    pub name: String,
    pub value: Value,
    pub note: String,
}

impl Row {
    pub fn rate(server: &str, name: &str, windows: Vec<Window>, note: &str) -> Self {
        Self::new(
            server,
            name,
            Value::Rate {
                windows,
                baseline: None,
            },
            note,
        )
    }

    pub fn paired(
        server: &str,
        name: &str,
        windows: Vec<Window>,
        baseline: (&str, Vec<Window>),
        note: &str,
    ) -> Self {
        let baseline = Some((baseline.0.to_owned(), baseline.1));
        Self::new(server, name, Value::Rate { windows, baseline }, note)
    }

    pub fn latency(server: &str, name: &str, times: Vec<Duration>, note: &str) -> Self {
        Self::new(server, name, Value::Latency(times), note)
    }

    pub fn single(server: &str, name: &str, time: Duration, note: &str) -> Self {
        Self::latency(server, name, vec![time], note)
    }

    fn new(server: &str, name: &str, value: Value, note: &str) -> Self {
        Self {
            server: server.to_owned(),
            name: name.to_owned(),
            value,
            note: note.to_owned(),
        }
    }

    /// The median of the per-round ratios of the call's rate to the baseline's.
    pub fn ratio(&self) -> Option<f64> {
        let Value::Rate {
            windows,
            baseline: Some((_, baseline)),
        } = &self.value
        else {
            return None;
        };
        let ratios: Vec<f64> = windows
            .iter()
            .zip(baseline)
            .map(|(w, b)| w.rate() / b.rate())
            .collect();
        (!ratios.is_empty()).then(|| percentile(&ratios, 0.5))
    }

    /// The table's cells after server and name.
    pub fn cells(&self) -> [String; 6] {
        match &self.value {
            Value::Rendered(cells) => (**cells).clone(),
            Value::Rate { windows, baseline } => {
                let rates: Vec<f64> = windows.iter().map(Window::rate).collect();
                let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
                let max = rates.iter().copied().fold(0.0, f64::max);
                let (p50, p99) = latency_percentiles(windows);
                let mut cpu = match (server_cpu(windows), database_cpu(windows)) {
                    (Some(s), Some(d)) => format!("{} + db {}", duration(s), duration(d)),
                    (Some(s), None) => duration(s),
                    (None, _) => String::new(),
                };
                let lost: usize = windows.iter().map(|w| w.cpu.lost_threads).sum();
                if lost > 0 {
                    cpu.push_str(&format!(" ({lost} threads ended uncounted)"));
                }
                let (base, ratio) = baseline.as_ref().map_or_else(Default::default, |(n, b)| {
                    let rates: Vec<f64> = b.iter().map(Window::rate).collect();
                    let ratio = self.ratio().map_or_else(String::new, |r| format!("{r:.2}"));
                    (
                        format!("{n} {} /s", thousands(percentile(&rates, 0.5))),
                        ratio,
                    )
                });
                [
                    format!("{} /s", thousands(percentile(&rates, 0.5))),
                    format!("{}–{} (n={})", thousands(min), thousands(max), rates.len()),
                    match (p50, p99) {
                        (Some(a), Some(b)) => format!("{} / {}", duration(a), duration(b)),
                        _ => String::new(),
                    },
                    cpu,
                    base,
                    ratio,
                ]
            }
            Value::Latency(times) if times.len() == 1 => [
                duration(times[0]),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
            Value::Latency(times) => {
                let secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
                let at = |p| duration(Duration::from_secs_f64(percentile(&secs, p)));
                [
                    format!("p50 {}", at(0.5)),
                    format!("max {} (n={})", at(1.0), secs.len()),
                    format!("{} / {}", at(0.5), at(0.99)),
                    String::new(),
                    String::new(),
                    String::new(),
                ]
            }
        }
    }

    pub fn render_inline(&self) -> String {
        let [result, spread, latency, cpu, base, ratio] = self.cells();
        let mut out = format!("{}: {result}  {spread}", self.name);
        for (label, cell) in [
            ("p50/p99", latency),
            ("cpu/call", cpu),
            ("vs", base),
            ("÷", ratio),
        ] {
            if !cell.is_empty() {
                out.push_str(&format!("  {label} {cell}"));
            }
        }
        out
    }
}

/// p50 and p99 of every call the windows counted.
pub fn latency_percentiles(windows: &[Window]) -> (Option<Duration>, Option<Duration>) {
    let mut all = crate::histogram::Counts::default();
    for window in windows {
        all.merge(&window.latency);
    }
    (all.percentile(0.5), all.percentile(0.99))
}

/// The median of the windows' server CPU per call.
pub fn server_cpu(windows: &[Window]) -> Option<Duration> {
    median_duration(windows.iter().filter_map(Window::server_cpu_per_call))
}

/// The median of the windows' database CPU per call.
pub fn database_cpu(windows: &[Window]) -> Option<Duration> {
    median_duration(windows.iter().filter_map(Window::database_cpu_per_call))
}

fn median_duration(values: impl Iterator<Item = Duration>) -> Option<Duration> {
    let secs: Vec<f64> = values.map(|d| d.as_secs_f64()).collect();
    (!secs.is_empty()).then(|| Duration::from_secs_f64(percentile(&secs, 0.5)))
}

/// The median rate of the windows.
pub fn median_rate(windows: &[Window]) -> f64 {
    percentile(&windows.iter().map(Window::rate).collect::<Vec<_>>(), 0.5)
}

/// Nearest-rank percentile.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 0.001 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

pub fn mebibytes(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Prints `lines` as aligned columns under `header`, right-aligning the columns in `right`,
/// with a blank line where the first column's backend changes.
pub fn print_columns(header: &[&str], lines: &[Vec<String>], right: &[usize]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(width - cell.chars().count());
            if right.contains(&i) {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
            out.push_str("  ");
        }
        out.trim_end().to_owned()
    };
    let head = render(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    println!("{head}");
    println!("{}", "-".repeat(head.chars().count()));
    let mut previous: Option<&str> = None;
    for line in lines {
        let backend = line[0].split('+').next().unwrap_or_default();
        if previous.is_some_and(|b| b != backend) {
            println!();
        }
        previous = Some(backend);
        println!("{}", render(line));
    }
    println!();
}

pub fn print_table(rows: &[Row], options: &Options) {
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut line = vec![row.server.clone(), row.name.clone()];
            line.extend(row.cells());
            line.push(row.note.clone());
            line
        })
        .collect();
    let (main, short) = (options.schedule, options.short);
    println!();
    println!(
        "Results{}.\n\
         Throughput: {} calls in flight over {} HTTP/2 connection(s) unless the row says \
         otherwise; median and range of {} windows of {:?}, each in a round with its baseline's \
         window (÷ = median of the per-round ratios); {:?} warm-up first, {:?} after each \
         switch. In-process and +nodelay rows: {} x {:?}. p50 / p99: every call of the \
         windows. cpu/call: median over windows of the server threads' CPU per call (+ the \
         PostgreSQL backends' of the bench's database).\n\
         Latency: sequential calls, one in flight, after 3 unmeasured calls.",
        if options.quick { " (--quick)" } else { "" },
        options.concurrency,
        options.connections,
        main.windows,
        main.window,
        main.warmup,
        crate::load::SWITCH_WARMUP,
        short.windows,
        short.window,
    );
    let header = [
        "server",
        "measurement",
        "median",
        "range",
        "p50 / p99",
        "cpu/call",
        "baseline (median)",
        "÷",
        "notes",
    ];
    print_columns(&header, &lines, &[2, 3, 4, 5, 6, 7]);
}
