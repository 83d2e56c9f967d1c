use std::{
    collections::HashSet,
    env, fs,
    io::Write,
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use diesel::{connection::SimpleConnection, Connection, PgConnection};

/// A private PostgreSQL server for tests, listening on 127.0.0.1 at a free port.
///
/// The server is stopped and its directory removed when the test process exits, even when it
/// never runs destructors (statics, aborts): a watchdog shell holds the read end of a pipe
/// whose write end only this process has, and cleans up when it closes.
pub struct TestPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    templates: Mutex<HashSet<String>>,
    _watchdog: Child,
}

static SHARED: OnceLock<TestPostgres> = OnceLock::new();
static DATABASE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The test process's shared server, started on first use.
///
/// # Panics
/// When no PostgreSQL server binaries can be found or the server does not start: the message
/// says what was looked for and how to install it.
pub fn shared_postgres() -> &'static TestPostgres {
    SHARED.get_or_init(|| TestPostgres::start().unwrap_or_else(|err| panic!("{err}")))
}

impl TestPostgres {
    /// Initialises and starts a new server.
    pub fn start() -> Result<Self, String> {
        let bin_dir = find_bin_dir()?;
        let run_as = unprivileged_user();
        let root = env::temp_dir().join(format!(
            "shop-testkit-pg-{}-{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        let data_dir = root.join("data");
        let watchdog = spawn_watchdog(&bin_dir, &root, &data_dir, run_as)?;

        let initdb = command(&bin_dir.join("initdb"), run_as)
            .args(["-D"])
            .arg(&data_dir)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        let server = Self {
            bin_dir,
            data_dir,
            port: free_port()?,
            run_as,
            templates: Mutex::new(HashSet::new()),
            _watchdog: watchdog,
        };
        server.start_server()?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file (its stderr), for tests that check what the server logs.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.with_file_name("server.log")
    }

    /// The `psql` of the server's binaries (beside `initdb`, or where a linked `initdb` points),
    /// else `psql` from `PATH`: for tests that run SQL scripts as users do.
    pub fn psql(&self) -> PathBuf {
        let beside = |dir: &Path| Some(dir.join("psql")).filter(|p| p.is_file());
        beside(&self.bin_dir)
            .or_else(|| {
                let initdb = fs::canonicalize(self.bin_dir.join("initdb")).ok()?;
                beside(initdb.parent()?)
            })
            .unwrap_or_else(|| PathBuf::from("psql"))
    }

    /// URL of database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database; returns its URL.
    pub fn create_database(&self) -> String {
        self.create_database_from(None)
    }

    /// A new database cloned from template `template`, which `prepare` (given the template's
    /// URL) sets up the first time it is asked for, e.g. by running migrations.
    ///
    /// # Panics
    /// When the server refuses the statements or `prepare` fails.
    pub fn create_migrated_database(
        &self,
        template: &str,
        prepare: impl FnOnce(&str) -> Result<(), String>,
    ) -> String {
        {
            let mut templates = self.templates.lock().unwrap_or_else(|e| e.into_inner());
            if !templates.contains(template) {
                self.admin(&format!("CREATE DATABASE \"{template}\""));
                prepare(&self.url(template))
                    .unwrap_or_else(|err| panic!("preparing template {template} failed: {err}"));
                templates.insert(template.to_owned());
            }
        }
        self.create_database_from(Some(template))
    }

    fn create_database_from(&self, template: Option<&str>) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        match template {
            Some(template) => self.admin(&format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            )),
            None => self.admin(&format!("CREATE DATABASE \"{name}\"")),
        }
        self.url(&name)
    }

    /// Runs SQL statements as the superuser in the `postgres` database.
    ///
    /// # Panics
    /// When the statements fail.
    pub fn admin(&self, sql: &str) {
        // A template cannot be cloned while a session is connected to it; retry briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let result = PgConnection::establish(&self.url("postgres"))
                .map_err(|e| e.to_string())
                .and_then(|mut conn| conn.batch_execute(sql).map_err(|e| e.to_string()));
            match result {
                Ok(()) => return,
                Err(err)
                    if err.contains("is being accessed by other users")
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(err) => panic!("{sql}: {err}"),
            }
        }
    }

    /// Stops the server (fast shutdown: sessions are disconnected), keeping its data.
    pub fn stop(&self) -> Result<(), String> {
        let output = command(&self.bin_dir.join("pg_ctl"), self.run_as)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["stop", "-m", "fast", "-w"])
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port.
    pub fn restart(&self) -> Result<(), String> {
        self.start_server()
    }

    fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300 -c log_min_messages=warning",
            self.port,
            self.data_dir.display()
        );
        let log = self.log_file();
        let output = command(&self.bin_dir.join("pg_ctl"), self.run_as)
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "PostgreSQL did not start: {}\n{}",
                String::from_utf8_lossy(&output.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            ))
        }
    }
}

fn command(program: &Path, run_as: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    cmd.env_remove("PGDATA")
        .env_remove("PGPORT")
        .env_remove("PGHOST");
    cmd
}

/// PostgreSQL refuses to run as root (as here and in CI); then run it as `postgres` or `nobody`.
fn unprivileged_user() -> Option<(u32, u32)> {
    let euid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&euid.stdout).trim() != "0" {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    ["postgres", "nobody"].iter().find_map(|wanted| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == *wanted)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
    })
}

fn spawn_watchdog(
    bin_dir: &Path,
    root: &Path,
    data_dir: &Path,
    run_as: Option<(u32, u32)>,
) -> Result<Child, String> {
    let script = r#"cat >/dev/null
if [ -f "$2/postmaster.pid" ]; then "$1/pg_ctl" -D "$2" stop -m immediate -w >/dev/null 2>&1; fi
rm -rf "$3""#;
    let mut child = command(Path::new("sh"), run_as)
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(bin_dir)
        .arg(data_dir)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the cleanup watchdog: {e}"))?;
    // Keep the pipe open; it closes when this process exits.
    if let Some(stdin) = child.stdin.as_mut() {
        let _ = stdin.flush();
    }
    Ok(child)
}

fn find_bin_dir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = env::var_os("PATH") {
        if let Some(dir) = env::split_paths(&path).find(|d| has_server(d)) {
            return Ok(dir);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut debian: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_server(d))
        .collect();
    debian.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    debian.pop().ok_or_else(|| {
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH, from pg_config --bindir or in \
         /usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql; Nix: \
         add postgresql to the shell)"
            .to_owned()
    })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_can_be_created_and_used() {
        let pg = shared_postgres();
        let url = pg.create_database();
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
            .unwrap();
    }

    #[test]
    fn a_server_can_be_stopped_and_started_again() {
        let pg = TestPostgres::start().unwrap();
        let url = pg.create_database();
        pg.stop().unwrap();
        assert!(PgConnection::establish(&url).is_err());
        pg.restart().unwrap();
        PgConnection::establish(&url).unwrap();
    }
}
