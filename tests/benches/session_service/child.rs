//! Scenarios measured in a process of their own. The fleet reports the resident set, which is
//! the whole process's: after the other scenarios it would carry the heap they freed but the
//! allocator kept. So the bench runs it by starting itself again with `--child` and the one
//! scenario as filter; the child prints its rows (already rendered) and checks as
//! tab-separated lines, which the parent folds into its own table and summary.

use std::process::{Command, Stdio};

use active_sessions_e2e::Backend;
use anyhow::{Context, Result, bail};

use crate::{
    Outcome,
    options::{Options, Scenario},
    report::{Row, Value},
    server::backend_name,
    targets::Check,
};

const ROW: &str = "ROW";
const CHECK: &str = "CHECK";

/// Runs `scenario` on `backend` in a child process with the same options.
pub async fn run(backend: Backend, scenario: Scenario, options: &Options) -> Result<Outcome> {
    let mut command = Command::new(std::env::current_exe().context("the bench's executable")?);
    command
        .args(["--child", "--bench"])
        .args(["--concurrency", &options.concurrency.to_string()])
        .args(["--connections", &options.connections.to_string()])
        .arg(format!("{}/{}", backend_name(backend), scenario.name()))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if options.quick {
        command.arg("--quick");
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    if !output.status.success() {
        bail!("the child process for it: {}", output.status);
    }
    let mut outcome = Outcome::default();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
        match fields.as_slice() {
            [kind, server, name, cells @ .., note] if kind == ROW && cells.len() == 6 => {
                let cells: [String; 6] = cells.to_vec().try_into().unwrap_or_default();
                outcome.rows.push(Row {
                    server: server.clone(),
                    name: name.clone(),
                    value: Value::Rendered(Box::new(cells)),
                    note: note.clone(),
                });
            }
            [kind, server, what, figure, goal, met] if kind == CHECK => {
                outcome.checks.push(Check {
                    server: server.clone(),
                    what: what.clone(),
                    figure: figure.clone(),
                    goal: goal.clone(),
                    met: match met.as_str() {
                        "met" => Some(true),
                        "not" => Some(false),
                        _ => None,
                    },
                });
            }
            _ => println!("{line}"),
        }
    }
    Ok(outcome)
}

/// In the child: prints what the scenarios measured for the parent.
pub fn emit(outcome: &Outcome) {
    let clean = |text: &str| text.replace(['\t', '\n'], " ");
    for row in &outcome.rows {
        let mut fields = vec![ROW.to_owned(), clean(&row.server), clean(&row.name)];
        fields.extend(row.cells().iter().map(|cell| clean(cell)));
        fields.push(clean(&row.note));
        println!("{}", fields.join("\t"));
    }
    for check in &outcome.checks {
        let met = match check.met {
            Some(true) => "met",
            Some(false) => "not",
            None => "-",
        };
        let fields = [
            CHECK,
            &clean(&check.server),
            &clean(&check.what),
            &clean(&check.figure),
            &clean(&check.goal),
            met,
        ];
        println!("{}", fields.join("\t"));
    }
}
