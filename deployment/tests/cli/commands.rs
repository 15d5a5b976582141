//! The commands: bad input, exit codes, JSON output, the operator's views.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

#[test]
fn bad_input_is_refused_clearly_with_its_exit_code_and_writes_nothing() {
    let machine = Machine::new();
    let out = machine.run(&deploy_zoom(
        "https://zoom.us.evil.com/j/1?pwd=s3cr3tpass",
        &[],
    ));
    assert_exit(
        &out,
        2,
        &["error[invalid_meeting_url]", "does not belong to zoom"],
    );
    assert!(!stderr(&out).contains("s3cr3tpass"), "{}", stderr(&out));
    assert!(
        !machine.db_path().exists(),
        "an invalid request opened the database"
    );

    let out = machine.run(&[
        "deploy",
        "--meeting-platform",
        "webex",
        "--meeting-url",
        ZOOM,
    ]);
    assert_exit(
        &out,
        2,
        &[
            "error[unknown_meeting_platform]",
            "allowed: zoom, teams, meet",
        ],
    );
    assert!(!machine.db_path().exists());

    let (code, body) = machine.json(&["stop", "4242"]);
    assert_eq!(code, 3);
    assert_eq!(body["error"]["code"], "bot_not_found");
    assert_eq!(body["error"]["message"], "bot 4242 does not exist");

    let out = machine
        .command(&["list"])
        .env("DATABASE_URL", "sqlite:/no/such/directory/bots.db")
        .output()
        .unwrap();
    assert_exit(
        &out,
        6,
        &[
            "cannot open the database",
            "/no/such/directory does not exist",
        ],
    );

    let out = machine
        .command(&["list"])
        .env("DATABASE_URL", "mysql://root:hunter2@db/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("DATABASE_URL"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));

    let out = machine.run(&["stop", "not-a-number"]);
    assert_eq!(out.status.code(), Some(2));

    // Nothing was written by any of the above.
    let (code, page) = machine.json(&["list"]);
    assert_eq!(code, 0);
    assert_eq!(page["bots"].as_array().unwrap().len(), 0);
}

#[test]
fn deploy_status_stop_and_a_stopped_bot_stays_stopped() {
    let machine = Machine::new();
    let mut child = machine
        .command(&[
            "--json",
            "deploy",
            "--meeting-platform",
            "zoom",
            "--password-stdin",
            "--display-name",
            "CLI bot",
        ])
        .env("MEEBOTER_MEETING_URL", ZOOM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "hunter2-pw").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let bot: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(bot["status"], "running", "{bot}");
    assert_eq!(bot["has_password"], true);
    // It waited for the bot, telling each step on standard error (plain
    // lines: standard error is not a terminal here).
    let progress = stderr(&out);
    assert!(progress.contains("bot 1: deploying"), "{progress}");
    assert!(progress.contains("bot 1: running"), "{progress}");
    for secret in ["s3cr3tpass", "hunter2-pw"] {
        assert!(
            !stdout.contains(secret) && !stderr(&out).contains(secret),
            "{secret} leaked"
        );
    }
    let id = bot["id"].as_u64().unwrap().to_string();
    assert_eq!(machine.bot_processes().len(), 1);

    let (code, status) = machine.json(&["status", &id]);
    assert_eq!(code, 0);
    assert_eq!(status["platform_status"]["kind"], "running", "{status}");
    assert_eq!(status["history"].as_array().unwrap().len(), 3, "{status}");

    let (code, all) = machine.json(&["status"]);
    assert_eq!(code, 0);
    assert_eq!(all.as_array().unwrap().len(), 1);

    let (code, stopped) = machine.json(&["stop", &id]);
    assert_eq!(code, 0, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert!(machine.wait_for_no_bot_process().is_empty());

    let out = machine.run(&["stop", &id]);
    assert_exit(
        &out,
        4,
        &[
            "error[illegal_transition]",
            "is stopped and cannot become stopping",
        ],
    );
    let (code, err) = machine.json(&["deploy", "--bot", &id]);
    assert_eq!(code, 4);
    assert_eq!(err["error"]["code"], "illegal_transition");

    let out = machine.run(&["pool"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped 1"));
}

#[test]
fn no_wait_leaves_the_deploy_to_the_scheduler_of_serve_or_reconcile() {
    let machine = Machine::new();
    let mut args = vec!["--json"];
    args.extend(deploy_zoom(ZOOM, &["--no-wait"]));
    let out = machine.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let bot: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bot["status"], "pending", "{bot}");
    assert!(bot["deploy_at"].is_string(), "its deploy is due: {bot}");
    assert!(
        stderr(&out).contains("its deploy is due now"),
        "{}",
        stderr(&out)
    );
    assert!(machine.bot_processes().is_empty(), "nothing started here");
    // The next reconcile pass deploys it.
    let (code, report) = machine.json(&["reconcile", "--once"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["due"]["deployed"], 1, "{report}");
    let (code, shown) = machine.json(&["status", "1"]);
    assert_eq!(code, 0, "{shown}");
    assert_eq!(shown["bot"]["status"], "running", "{shown}");
    let (code, _) = machine.json(&["stop", "1"]);
    assert_eq!(code, 0);
    // Waiting and not waiting at once makes no sense.
    let out = machine.run(&deploy_zoom(ZOOM, &["--no-wait", "--wait-for", "5"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn platforms_json_lists_what_the_docs_generator_needs() {
    let machine = Machine::new();
    let (code, listing) = machine.json(&["platforms"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = listing["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"local"), "{names:?}");
    let local = listing["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "local")
        .unwrap();
    assert_eq!(local["feature"], "local");
    assert_eq!(local["auto_detection"]["mode"], "fallback");
    assert!(
        local["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "LOCAL_BOT_COMMAND")
    );
    let service_env: Vec<&str> = listing["service_env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in [
        "DEPLOYMENT_PLATFORM",
        "DATABASE_URL",
        "LISTEN_ADDR",
        "API_TOKEN",
        "RECONCILE_INTERVAL",
        "DEPLOY_TIMEOUT",
        "LOG_FORMAT",
    ] {
        assert!(
            service_env.contains(&name),
            "{name} missing: {service_env:?}"
        );
    }
    assert_eq!(listing["selected"]["platform"], "local");
    assert!(
        listing["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "local")
    );
    assert_eq!(listing["sim_bot_env"][0]["name"], "BOT_PORT");
    assert_eq!(listing["test_env"][0]["name"], "MEEBOTER_TEST_FAILPOINT");
}

#[test]
fn doctor_names_every_problem_and_exits_with_the_configuration_code() {
    let machine = Machine::new();
    let out = machine.run(&["doctor"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let out = machine
        .command(&["doctor"])
        .env("DEPLOY_TIMEOUT", "5")
        .env("LOCAL_STOP_GRACE_SECONDS", "soon")
        .env("DATABASE_URL", "sqlite:/no/such/dir/x.db")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{stdout}");
    assert!(stdout.contains("DEPLOY_TIMEOUT"), "{stdout}");
    assert!(stdout.contains("LOCAL_STOP_GRACE_SECONDS"), "{stdout}");
}

#[test]
fn help_documents_the_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "0  success",
        "3  not found",
        "4  conflict",
        "5  temporarily unavailable",
        "6  configuration problem",
    ] {
        assert!(help.contains(line), "{line} missing from --help:\n{help}");
    }
}

#[test]
fn a_full_machine_queues_the_bot_and_places_it_when_a_bot_ends() {
    let machine = Machine::new();
    let run = |args: &[&str]| {
        machine
            .command(args)
            .env("LOCAL_MAX_BOTS", "1")
            .output()
            .unwrap()
    };
    let deploy = |n: u32| {
        run(&[
            "--json",
            "deploy",
            "--meeting-platform",
            "zoom",
            "--meeting-url",
            &format!("https://zoom.us/j/{n}"),
        ])
    };
    let first = deploy(1);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let second = deploy(2);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let body: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(body["status"], "queued", "{body}");
    assert_eq!(body["queue_position"], 1, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("local: at its cap (1 of 1 bots, LOCAL_MAX_BOTS)"),
        "{body}"
    );
    let (_, queued) = machine.json(&["list", "--status", "queued"]);
    assert_eq!(queued["bots"].as_array().unwrap().len(), 1, "{queued}");
    assert_eq!(machine.bot_processes().len(), 1);
    let (_, running) = machine.json(&["list", "--status", "running"]);
    let first_id = running["bots"][0]["id"].as_u64().unwrap().to_string();
    assert_eq!(machine.json(&["stop", &first_id]).0, 0);
    // The next reconciler pass places the queued bot in the freed room.
    let pass = run(&["--json", "reconcile", "--once"]);
    assert_eq!(pass.status.code(), Some(0), "{}", stderr(&pass));
    let second_id = body["id"].as_u64().unwrap().to_string();
    let (_, placed) = machine.json(&["status", &second_id]);
    assert_eq!(placed["bot"]["status"], "running", "{placed}");
    assert_eq!(placed["bot"]["platform"], "local", "{placed}");
    assert_eq!(machine.json(&["stop", &second_id]).0, 0);
    assert!(machine.wait_for_no_bot_process().is_empty());
}

#[test]
fn what_the_command_line_left_out_is_named_as_its_flag() {
    let machine = Machine::new();
    let out = machine.run(&["deploy", "--meeting-platform", "zoom"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("--meeting-url"), "{text}");
    assert!(text.contains("MEEBOTER_MEETING_URL"), "{text}");
    let out = machine.run(&["deploy", "--meeting-url", ZOOM]);
    assert_exit(&out, 2, &["--meeting-platform"]);

    let (code, body) = machine.json(&deploy_zoom(ZOOM, &["--idempotency-key", "a b"]));
    assert_eq!(code, 2);
    assert_eq!(body["error"]["code"], "invalid_idempotency_key", "{body}");
}

#[test]
fn a_log_level_that_is_not_a_level_is_a_configuration_error() {
    let machine = Machine::new();
    let out = machine
        .command(&["list"])
        .env("LOG_LEVEL", "warning")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("LOG_LEVEL"), "{}", stderr(&out));
    assert!(!machine.db_path().exists());
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let machine = Machine::new();
    let mut child = machine
        .command(&["--json", "platforms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the command writes (`| head -0`, or a
    // pager quit early).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Broken pipe"), "{}", stderr(&out));
}

#[test]
fn history_times_are_rfc3339_and_listed_reasons_end_at_a_word() {
    let machine = Machine::new();
    let (code, bot) = machine.json(&deploy_zoom(ZOOM, &["--no-deploy"]));
    assert_eq!(code, 0, "{bot}");
    let id = bot["id"].to_string();
    let out = machine.run(&["stop", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = machine.run(&["status", &id]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let history: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("history:"))
        .skip(1)
        .collect();
    assert!(!history.is_empty(), "{text}");
    for line in history {
        let at = line.split_whitespace().next().unwrap();
        assert!(
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
            "{at} is not RFC 3339: {text}"
        );
    }
    let out = machine.run(&["list"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "stopped before it was deployed" fits; the column keeps whole words.
    assert!(text.contains("stopped before it was deployed"), "{text}");
}

#[test]
fn webhooks_are_listed_and_retried_from_the_command_line() {
    let machine = Machine::new();
    let secret = deployment::webhooks::SigningSecret::random().expose();
    let hooked = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = machine
            .command(&all)
            // Nothing listens there; no serve runs to deliver anyway.
            .env("WEBHOOK_URL", "http://127.0.0.1:9/hook?token=tok-s3cret")
            .env("WEBHOOK_SECRET", &secret)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let value: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout} {}", stderr(&out)));
        (out.status.code().unwrap_or(-1), value)
    };
    let (code, bot) = hooked(&deploy_zoom(
        "https://zoom.us/j/123456789",
        &["--no-deploy"],
    ));
    assert_eq!(code, 0, "{bot}");
    let id = bot["id"].as_u64().unwrap().to_string();
    let (code, view) = hooked(&["webhooks", &id]);
    assert_eq!(code, 0, "{view}");
    let deliveries = view["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{view}");
    assert_eq!(deliveries[0]["event_type"], "bot.status_changed");
    assert_eq!(deliveries[0]["state"], "pending");
    assert_eq!(deliveries[0]["url"], "http://127.0.0.1:9/hook?…");
    assert!(!view.to_string().contains("tok-s3cret"), "{view}");
    let delivery = deliveries[0]["id"].as_i64().unwrap().to_string();
    let (code, retried) = hooked(&["webhook", "retry", &delivery]);
    assert_eq!(code, 0, "{retried}");
    assert_eq!(retried["state"], "pending");
    let (code, missing) = hooked(&["webhook", "retry", "99999"]);
    assert_eq!(code, 3, "{missing}");
    assert_eq!(missing["error"]["code"], "delivery_not_found");
    let out = machine
        .command(&["webhooks", &id])
        .env("WEBHOOK_URL", "http://127.0.0.1:9/hook")
        .env("WEBHOOK_SECRET", &secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bot.status_changed"), "{text}");
    assert!(text.contains("pending"), "{text}");
}

#[test]
fn a_scheduled_bot_shows_its_projected_start_and_platforms_its_backlog_column() {
    let machine = Machine::new();
    let join_at = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let out = machine.run(&deploy_zoom(
        "https://zoom.us/j/7",
        &["--join-at", &join_at, "--no-wait"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("scheduled"), "{text}");
    assert!(text.contains("  projected start: "), "{text}");
    assert!(text.contains(", on time for join_at"), "{text}");
    let out = machine.run(&["platforms"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("DUE BACKLOG"), "{text}");
    assert!(
        text.contains("deploy pace of local: no limit; running about 1 s after the call"),
        "{text}"
    );
}
