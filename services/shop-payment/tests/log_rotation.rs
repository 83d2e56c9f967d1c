//! Log rotation under load, on the real `shop-payment` binary: clients pay concurrently while
//! the log rotates by size (a tiny `--log-rotate-size`) and on SIGHUP, many times; afterwards
//! every payment's line is in exactly one file (the rotated ones and the live one), whole, in
//! the order it was written, and no file is past the size limit. This is the file side of "no
//! line lost or duplicated on rotation": the shippers read each file to its end before they
//! follow the path to the next one (README, "Log pipeline").

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_shop-payment");
const CLIENTS: usize = 8;
const PAYMENTS_PER_CLIENT: usize = 150;
const ROTATE_SIZE: u64 = 8 * 1024;
/// More than the rotations this run makes (checked): about 45 by size and at most SIGNALS on
/// request, so no file is deleted and every line written is still on disk.
const KEEP: usize = 100;
const SIGNALS: usize = 25;

/// The `shop-payment` binary, killed when dropped.
struct Payment {
    child: Child,
    base: String,
    /// The payment token the service requires, as the API presents it.
    token: shop_testkit::secrets::TokenFile,
}

impl Payment {
    async fn start(log_dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let token = shop_testkit::secrets::token_file("payment-token");
        let child = Command::new(BINARY)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--payment-token-file")
            .arg(&token.path)
            .arg("--log-dir")
            .arg(log_dir)
            .args(["--log-rotate-size", &format!("{}KiB", ROTATE_SIZE / 1024)])
            .args(["--log-rotate-keep", &KEEP.to_string()])
            // Some declines, so lines of two levels and events rotate together.
            .args(["--decline-rate", "0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let payment = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        while client
            .get(format!("{}/healthz", payment.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "shop-payment did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        payment
    }
}

impl Drop for Payment {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shop-payment-rotation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `c<client>-<seq>` → (client, seq).
fn parse_order_ref(order_ref: &str) -> (usize, usize) {
    let (client, seq) = order_ref
        .strip_prefix('c')
        .and_then(|rest| rest.split_once('-'))
        .unwrap_or_else(|| panic!("an order_ref of this test: {order_ref}"));
    (client.parse().unwrap(), seq.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_line_is_in_exactly_one_file_across_many_rotations_under_load() {
    let dir = temp_dir();
    let mut payment = Payment::start(&dir).await;

    // SIGHUP every 50 ms while the clients pay: rotations on request, between size rotations.
    let paying = Arc::new(AtomicBool::new(true));
    let hangups = Arc::new(AtomicUsize::new(0));
    let signaller = {
        let paying = paying.clone();
        let hangups = hangups.clone();
        let pid = payment.child.id();
        std::thread::spawn(move || {
            // At most SIGNALS of them, so the rotations stay below KEEP on a slow machine too.
            while paying.load(Ordering::SeqCst) && hangups.load(Ordering::SeqCst) < SIGNALS {
                std::thread::sleep(Duration::from_millis(50));
                shop_testkit::process::send_signal(pid, "HUP");
                hangups.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        let url = format!("{}/payments", payment.base);
        let token = payment.token.token.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..PAYMENTS_PER_CLIENT {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"order_ref": format!("c{c}-{seq:04}"), "amount": "12.34", "method": "card"}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                assert!(status == 200 || status == 402, "payment answered {status}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    paying.store(false, Ordering::SeqCst);
    signaller.join().unwrap();
    if let Some(status) = payment.child.try_wait().unwrap() {
        panic!("shop-payment exited under load: {status}");
    }
    let status = shop_testkit::process::terminate(&mut payment.child);
    assert!(status.success(), "shop-payment stopped with {status}");

    let files = shop_telemetry::logging::files_oldest_first(&dir, "payment");
    let rotated = files.len() - 1;
    assert!(
        rotated < KEEP,
        "{rotated} rotated files: raise KEEP so that none was deleted"
    );
    let mut seen: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let mut last_seq = [None::<usize>; CLIENTS];
    let mut rotations: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.len() as u64 <= ROTATE_SIZE,
            "{name} is {} bytes, past the {ROTATE_SIZE}-byte limit",
            text.len()
        );
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{name} ends mid-line"
        );
        for line in text.lines() {
            let line: Value = serde_json::from_str(line).unwrap_or_else(|err| {
                panic!("{name}: a line that is not whole JSON ({err}): {line}")
            });
            assert_eq!(line["service"], "payment", "{name}: {line}");
            match line["event"].as_str() {
                Some("payment_authorized" | "payment_declined") => {
                    let key = parse_order_ref(line["order_ref"].as_str().unwrap());
                    // Each client pays one after the other: its lines must follow in that order
                    // through the files, oldest first.
                    let previous = last_seq[key.0].replace(key.1);
                    assert!(
                        previous.is_none_or(|p| p < key.1),
                        "{name}: client {} seq {} after seq {previous:?}",
                        key.0,
                        key.1
                    );
                    seen.entry(key).or_default().push(name.clone());
                }
                Some("log_file_rotated") => {
                    *rotations
                        .entry(line["reason"].as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
                _ => {}
            }
        }
    }

    let duplicated: Vec<_> = seen.iter().filter(|(_, files)| files.len() > 1).collect();
    assert!(
        duplicated.is_empty(),
        "lines in more than one place: {duplicated:?}"
    );
    let missing: Vec<(usize, usize)> = (0..CLIENTS)
        .flat_map(|c| (0..PAYMENTS_PER_CLIENT).map(move |s| (c, s)))
        .filter(|key| !seen.contains_key(key))
        .collect();
    assert!(
        missing.is_empty(),
        "payments without their line: {missing:?}"
    );

    // Every rotation left exactly one rotated file and started the next with its notice.
    let by_size = rotations.get("size").copied().unwrap_or(0);
    let by_signal = rotations.get("signal").copied().unwrap_or(0);
    eprintln!(
        "{} payments' lines, each once, across {} files: {by_size} rotations by size, \
         {by_signal} on SIGHUP",
        seen.len(),
        files.len()
    );
    assert_eq!(by_size + by_signal, rotated, "{rotations:?}");
    assert!(
        by_size >= 20,
        "only {by_size} rotations by size: {rotations:?}"
    );
    assert!(
        by_signal >= 3 && by_signal <= hangups.load(Ordering::SeqCst),
        "{by_signal} rotations on SIGHUP for {} signals",
        hangups.load(Ordering::SeqCst)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
