//! The NixOS VM tests (vm-tests/) as far as they can be checked without Nix and KVM:
//! their Python test scripts, exactly as `vm-tests/scripts.nix` hands them to the driver,
//! pass the driver's lint (pyflakes) and type check (mypy) with the driver's objects typed
//! as the driver types them; every labctl command they run exists in labctl's clap
//! definitions; the tests are flake checks built with `runNixOSTest`; their nodes are
//! evaluated by nixos-eval (`xtask nixos-eval`).

mod common;

use std::{
    collections::BTreeSet,
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{eval_json, scratch_dir, stderr, stdout};
use serde_json::Value;
use xtask::{clap_source, repo_root};

/// The VM tests: name (the flake check is `vm-<name>`), and the expression (over `s`, the
/// attribute set of vm-tests/scripts.nix) that gives its test script. hardening.nix passes
/// its node's address; a documentation address stands in for it here.
const VM_TESTS: [(&str, &str); 4] = [
    ("alerts", "s.alerts"),
    ("alerts-alloy", "s.alerts-alloy"),
    ("hardening", "s.hardening { ownAddress = \"192.0.2.1\"; }"),
    ("two-hosts", "s.two-hosts"),
];

const PYTHON_TOOLS: &str = "pip install pyflakes mypy";

fn driver_stub() -> PathBuf {
    repo_root().join("services/xtask/tests/fixtures/nixos_test_driver.py")
}

/// The test script the driver gets.
fn test_script(expr: &str) -> String {
    let value = eval_json(&format!(
        "{{ root }}: let s = import (root + \"/vm-tests/scripts.nix\"); in {expr}"
    ));
    value
        .as_str()
        .expect("a test script is a string")
        .to_string()
}

fn nix_file(name: &str) -> String {
    let path = repo_root().join(format!("vm-tests/{name}.nix"));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The nodes a test declares (`nodes.<name>...` at the start of a line), as the Python names
/// the driver gives them, plus `machine` for a single node (nixos/lib/testing/driver.nix).
fn node_names(name: &str) -> Vec<String> {
    let mut nodes: Vec<String> = nix_file(name)
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("nodes."))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .map(|c| if c == '-' { '_' } else { c })
                .collect::<String>()
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        !nodes.is_empty(),
        "vm-tests/{name}.nix declares no `nodes.<name>`"
    );
    if nodes.len() == 1 && nodes[0] != "machine" {
        nodes.push("machine".into());
    }
    nodes
}

/// The names the stub declares at the top level (`name: type`): the driver's symbols.
fn stub_symbols() -> Vec<String> {
    fs::read_to_string(driver_stub())
        .expect("the driver stub exists")
        .lines()
        .filter_map(|line| {
            let (name, _) = line.split_once(':')?;
            (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
                .then(|| name.to_string())
        })
        .collect()
}

/// Runs `python3 -m <module> args` in `dir`; panics with the install command when Python
/// or the module is missing. Never skips.
fn python_module(module: &str, args: &[&str], dir: &Path, env: &[(&str, String)]) -> Output {
    let probe = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the Python module `{module}` is missing (needed by this check); install it with `{PYTHON_TOOLS}`\n{}",
            stderr(&out)
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("`python3` is not installed (needed by this check); then `{PYTHON_TOOLS}`")
        }
        Err(e) => panic!("running python3: {e}"),
    }
    let mut command = Command::new("python3");
    command.arg("-m").arg(module).args(args).current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("python3 runs")
}

/// pyflakes as the driver runs it: on the script alone, the driver's symbols and the node
/// names declared as builtins.
fn pyflakes(script: &str, nodes: &[String], dir: &Path, file: &str) -> Output {
    let path = dir.join(file);
    fs::write(&path, script).unwrap();
    let builtins: Vec<String> = nodes.iter().cloned().chain(stub_symbols()).collect();
    python_module(
        "pyflakes",
        &[path.to_str().unwrap()],
        dir,
        &[("PYFLAKES_BUILTINS", builtins.join(","))],
    )
}

/// mypy as the driver runs it: the typed prelude, one `<node>: QemuMachine` per node, the
/// script, with `--no-implicit-optional`.
fn mypy(script: &str, nodes: &[String], dir: &Path, file: &str) -> Output {
    let mut typed = fs::read_to_string(driver_stub()).unwrap();
    for node in nodes {
        typed.push_str(&format!("{node}: QemuMachine\n"));
    }
    typed.push_str(script);
    let path = dir.join(file);
    fs::write(&path, typed).unwrap();
    let cache = dir.join("mypy-cache");
    python_module(
        "mypy",
        &[
            "--no-implicit-optional",
            "--pretty",
            "--no-color-output",
            "--cache-dir",
            cache.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
        dir,
        &[],
    )
}

#[test]
fn vm_test_scripts_pass_the_drivers_lint() {
    let dir = scratch_dir("vm-pyflakes");
    let mut failures = Vec::new();
    for (name, expr) in VM_TESTS {
        let out = pyflakes(
            &test_script(expr),
            &node_names(name),
            &dir,
            &format!("{}.py", name.replace('-', "_")),
        );
        if !out.status.success() {
            failures.push(format!("{name}:\n{}{}", stdout(&out), stderr(&out)));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "pyflakes:\n{}", failures.join("\n"));
}

#[test]
fn vm_test_scripts_pass_the_drivers_type_check() {
    let dir = scratch_dir("vm-mypy");
    let mut failures = Vec::new();
    for (name, expr) in VM_TESTS {
        let out = mypy(
            &test_script(expr),
            &node_names(name),
            &dir,
            &format!("{}_typed.py", name.replace('-', "_")),
        );
        if !out.status.success() {
            failures.push(format!("{name}:\n{}{}", stdout(&out), stderr(&out)));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "mypy:\n{}", failures.join("\n"));
}

#[test]
fn the_lint_and_the_type_check_can_fail() {
    // Guards the two checks above: an undefined name, an unknown method and a wrong type
    // must each be refused.
    let dir = scratch_dir("vm-guards");
    let nodes = vec!["machine".to_string()];
    let out = pyflakes(
        "start_all()\nmachne.succeed('true')\n",
        &nodes,
        &dir,
        "guard_undefined.py",
    );
    assert!(!out.status.success(), "pyflakes passed an undefined name");
    let out = pyflakes(
        "start_all()\nmachine.succeed('true')\n",
        &nodes,
        &dir,
        "guard_fine.py",
    );
    assert!(
        out.status.success(),
        "pyflakes refused a fine script:\n{}",
        stdout(&out)
    );
    for (file, script) in [
        ("guard_method.py", "machine.wait_for_unti('x')\n"),
        ("guard_types.py", "machine.wait_for_unit(42)\n"),
        ("guard_result.py", "n: int = machine.succeed('true')\n"),
    ] {
        let out = mypy(script, &nodes, &dir, file);
        assert!(!out.status.success(), "mypy passed {script}");
    }
    let out = mypy(
        "start_all()\nwith subtest('x'):\n    machine.log(machine.succeed('true'))\n",
        &nodes,
        &dir,
        "guard_ok.py",
    );
    let _ = fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "mypy refused a fine script:\n{}",
        stdout(&out)
    );
}

/// Finds, with Python's own parser, every string argument of a call that runs labctl (any
/// call but `subtest`, `log` and `print`, whose text only mentions it): the
/// literal with its implicit concatenations and f-string parts, module-level string and
/// integer constants substituted (the parameters of scripts.nix), other parts as `{}`.
const FIND_LABCTL_COMMANDS: &str = r#"
import ast, json, re, sys
tree = ast.parse(open(sys.argv[1]).read())
consts = {}
def text(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        out = ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                out += str(part.value)
            elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name) and part.value.id in consts:
                out += consts[part.value.id]
            else:
                out += "{}"
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = text(node.left), text(node.right)
        if left is not None and right is not None:
            return left + right
    return None
for node in tree.body:
    target, value = None, None
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        target, value = node.target.id, node.value
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        target, value = node.targets[0].id, node.value
    if target and value is not None:
        t = text(value)
        if t is not None and "{}" not in t:
            consts[target] = t
commands = []
def called(node):
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
for node in ast.walk(tree):
    # Subtest titles and log lines only mention labctl.
    if isinstance(node, ast.Call) and called(node) not in ("subtest", "log", "print"):
        for arg in list(node.args) + [k.value for k in node.keywords]:
            t = text(arg)
            if t is not None and re.search(r"(^|[\s;&|(])labctl(\s|$)", t):
                commands.append(t)
print(json.dumps(commands))
"#;

/// What `reader` (a Python program taking a script's path) prints as JSON about `script`,
/// written to `dir/file` first.
fn read_script(reader: &str, script: &str, dir: &Path, file: &str) -> Value {
    let path = dir.join(file);
    fs::write(&path, script).unwrap();
    let out = Command::new("python3")
        .args(["-c", reader, path.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed by this check ({e}); install Python 3"));
    assert!(
        out.status.success(),
        "reading the script's commands failed:\n{}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn labctl_commands(script: &str, dir: &Path, file: &str) -> Vec<String> {
    read_script(FIND_LABCTL_COMMANDS, script, dir, file)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// The labctl invocations in a shell command: the environment assignments before each, and
/// its words up to the end of that simple command.
fn invocations(command: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if *word != "labctl" {
            continue;
        }
        let env = words[..i]
            .iter()
            .rev()
            .take_while(|w| {
                w.contains('=') && w.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            })
            .map(|w| w.split('=').next().unwrap().to_string())
            .collect();
        let args = words[i + 1..]
            .iter()
            .take_while(|w| {
                !matches!(**w, ";" | "&&" | "||" | "|" | "&")
                    && !w.starts_with('>')
                    && !w.starts_with('<')
                    && !w.starts_with("2>")
            })
            .map(|w| w.trim_matches('\'').trim_matches('"').to_string())
            .collect();
        out.push((env, args));
    }
    out
}

/// Finds, with Python's own parser, every shell command a script gives the driver: the
/// arguments of `succeed`, `fail` (all), `execute`, `wait_until_succeeds`, `wait_until_fails`
/// (the first) and `systemctl` (prefixed with `systemctl `), on any machine. Module-level
/// string and integer constants (the parameters of scripts.nix) are substituted, other parts
/// of an f-string (loop variables) become a plain word. A command that is not a literal is
/// reported, and so is every shell control operator (`;`, `|`, `||`, `&&`, `&`, parentheses)
/// and substitution (`$(`, backquotes, `<(`): the driver runs each command under
/// `set -euo pipefail`, and a VM test command is a single call of a tested program.
const FIND_SHELL_COMMANDS: &str = r#"
import ast, json, shlex, sys
tree = ast.parse(open(sys.argv[1]).read())
consts = {}
def text(node, placeholder):
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        out = ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                out += str(part.value)
            elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name) and part.value.id in consts:
                out += consts[part.value.id]
            elif placeholder:
                out += "PLACEHOLDER"
            else:
                return None
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = text(node.left, placeholder), text(node.right, placeholder)
        if left is not None and right is not None:
            return left + right
    return None
for node in tree.body:
    target, value = None, None
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        target, value = node.target.id, node.value
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        target, value = node.targets[0].id, node.value
    if target and value is not None:
        t = text(value, False)
        if t is not None:
            consts[target] = t
ALL = {"succeed", "fail"}
FIRST = {"execute", "wait_until_succeeds", "wait_until_fails", "systemctl"}
OPERATORS = {";", "|", "||", "&&", "&", "(", ")", ";;", "|&"}
found = []
for node in ast.walk(tree):
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        continue
    method = node.func.attr
    if method in ALL:
        args = list(node.args)
    elif method in FIRST:
        args = node.args[:1] or [k.value for k in node.keywords if k.arg in ("command", "q")]
    else:
        continue
    for arg in args:
        command = text(arg, True)
        problems = []
        if command is None:
            problems.append("not a literal command (build it from scripts.nix parameters in an f-string)")
        else:
            if method == "systemctl":
                command = "systemctl " + command
            if "$(" in command or "`" in command or "<(" in command:
                problems.append("a command or process substitution")
            try:
                lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
                lexer.whitespace_split = True
                tokens = list(lexer)
            except ValueError as e:
                tokens = []
                problems.append(f"unreadable: {e}")
            ops = sorted({t for t in tokens if t in OPERATORS})
            if ops:
                problems.append("shell control operators " + " ".join(ops) + ": one command per call")
        found.append({"line": node.lineno, "method": method, "command": command, "problems": problems})
print(json.dumps(found))
"#;

/// The shell commands of a script with what is wrong with each (empty when fine), bash's
/// syntax check included.
fn shell_command_problems(script: &str, dir: &Path, file: &str) -> Vec<(String, Vec<String>)> {
    read_script(FIND_SHELL_COMMANDS, script, dir, file)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let line = c["line"].as_u64().unwrap();
            let method = c["method"].as_str().unwrap();
            let mut problems: Vec<String> = c["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            let command = c["command"]
                .as_str()
                .unwrap_or("<not a literal>")
                .to_owned();
            if c["command"].is_string() {
                // As the driver runs it.
                let bash = Command::new("bash")
                    .args(["-n", "-c", &format!("set -euo pipefail; {command}")])
                    .output()
                    .expect("bash runs");
                if !bash.status.success() {
                    problems.push(format!("bash -n: {}", stderr(&bash).trim()));
                }
            }
            (format!("line {line}: {method}(\"{command}\")"), problems)
        })
        .collect()
}

#[test]
fn vm_test_commands_are_single_calls_valid_under_the_drivers_shell() {
    let dir = scratch_dir("vm-shell");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, expr) in VM_TESTS {
        let commands = shell_command_problems(
            &test_script(expr),
            &dir,
            &format!("{}.py", name.replace('-', "_")),
        );
        assert!(
            !commands.is_empty(),
            "{name}: no command found: the finder misses them"
        );
        for (command, problems) in commands {
            checked += 1;
            for problem in problems {
                failures.push(format!("{name}: {command}: {problem}"));
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
    eprintln!("{checked} commands checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_command_check_refuses_what_breaks_under_set_euo_pipefail() {
    // Guards the check above, with the commands that made vm-hardening fail on every
    // builder (xargs exits 123 when a grep finds nothing; set -e stops before `; true`).
    let dir = scratch_dir("vm-shell-guards");
    let script = r#"CONST: str = "--flag 'value'"
for unit in ["a"]:
    machine.succeed(f"labctl audit x {CONST} {unit} 2>&1 > /tmp/out")
machine.execute("xargs -r -a /tmp/small-paths grep -rlsF -f /tmp/p -- ; true")
machine.wait_until_succeeds("curl -sf http://x/ready | grep -q ready", timeout=30)
machine.succeed("a && b", "c || true")
machine.fail(f"echo $(cat {unit})")
command = "ls"
machine.succeed(command)
machine.succeed("if then")
machine.systemctl("stop x.service")
"#;
    let found = shell_command_problems(script, &dir, "guards.py");
    let _ = fs::remove_dir_all(&dir);
    let problems = |line: &str| -> Vec<String> {
        found
            .iter()
            .filter(|(c, _)| c.starts_with(line))
            .flat_map(|(_, p)| p.clone())
            .collect()
    };
    assert!(problems("line 3:").is_empty(), "{found:?}");
    assert!(
        problems("line 4:")
            .iter()
            .any(|p| p.contains("control operators ;")),
        "{found:?}"
    );
    assert!(
        problems("line 5:")
            .iter()
            .any(|p| p.contains("control operators |")),
        "{found:?}"
    );
    let line6 = problems("line 6:");
    assert!(
        line6.iter().any(|p| p.contains("&&")) && line6.iter().any(|p| p.contains("||")),
        "{found:?}"
    );
    assert!(
        problems("line 7:")
            .iter()
            .any(|p| p.contains("substitution")),
        "{found:?}"
    );
    assert!(
        problems("line 9:")
            .iter()
            .any(|p| p.contains("not a literal")),
        "{found:?}"
    );
    assert!(
        problems("line 10:")
            .iter()
            .any(|p| p.starts_with("bash -n")),
        "{found:?}"
    );
    assert!(problems("line 11:").is_empty(), "{found:?}");
}

#[test]
fn labctl_commands_of_the_vm_test_scripts_exist() {
    let labctl_src = repo_root().join("services/labctl/src");
    let model = clap_source::read_cli(&labctl_src, "Cli").unwrap_or_else(|e| {
        panic!(
            "cannot read labctl's command line from {}: {e:#}",
            labctl_src.display()
        )
    });
    assert!(
        model.subcommands.contains_key("verify") && model.subcommands.contains_key("scenario"),
        "labctl's command line read from {} lacks verify or scenario: {:?}",
        labctl_src.display(),
        model.subcommands.keys().collect::<Vec<_>>()
    );
    let scenario_source =
        fs::read_to_string(labctl_src.join("scenario/mod.rs")).unwrap_or_default();
    let dir = scratch_dir("vm-labctl");
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for (name, expr) in VM_TESTS {
        for command in labctl_commands(
            &test_script(expr),
            &dir,
            &format!("{}.py", name.replace('-', "_")),
        ) {
            for (env, args) in invocations(&command) {
                if let Err(e) = clap_source::check_command(&model, &args) {
                    failures.push(format!("{name}: `labctl {}`: {e}", args.join(" ")));
                }
                for var in env.iter().filter(|v| v.starts_with("LABCTL_")) {
                    if !model.env.contains(var) {
                        failures.push(format!(
                            "{name}: labctl reads no environment variable {var}"
                        ));
                    }
                }
                // Scenario names: labctl's own (scenario/mod.rs names them).
                if let [first, action, scenario, ..] = args.as_slice() {
                    if first == "scenario"
                        && (action == "start" || action == "stop")
                        && !scenario_source.contains(&format!("\"{scenario}\""))
                    {
                        failures.push(format!("{name}: labctl knows no scenario `{scenario}`"));
                    }
                }
                checked.push(format!("{name}: labctl {}", args.join(" ")));
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
    eprintln!("checked:\n{}", checked.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The finder must see what the scripts are known to run.
    for (test, expected) in [
        ("alerts", " verify "),
        ("two-hosts", " scenario start "),
        ("two-hosts", " audit firing "),
        ("hardening", " audit store-secrets "),
        ("alerts", " audit memory "),
        ("alerts-alloy", " audit log-lines --with-rotated "),
        ("two-hosts", " audit listeners "),
    ] {
        assert!(
            checked
                .iter()
                .any(|c| c.starts_with(&format!("{test}: labctl")) && c.contains(expected)),
            "no `{expected}` found in {test}'s script: the command finder misses it ({checked:?})"
        );
    }
}

#[test]
fn every_vm_test_is_a_flake_check_built_with_run_nixos_test() {
    let flake = fs::read_to_string(repo_root().join("flake.nix")).unwrap();
    for (name, _) in VM_TESTS {
        assert!(
            flake.contains(&format!("vm-{name} = import ./vm-tests/{name}.nix")),
            "flake.nix has no check vm-{name}"
        );
        let text = nix_file(name);
        assert!(
            text.contains("pkgs.testers.runNixOSTest {"),
            "{name}.nix does not use pkgs.testers.runNixOSTest"
        );
        for banned in ["nixosTest", "skipLint", "skipTypeCheck"] {
            assert!(!text.contains(banned), "{name}.nix uses {banned}");
        }
        assert!(
            text.contains("(import ./scripts.nix)"),
            "{name}.nix takes its script elsewhere than scripts.nix"
        );
    }
}

#[test]
fn vm_test_nodes_are_evaluated_by_nixos_eval() {
    let root = repo_root();
    let cases: Vec<String> = xtask::NIXOS_EVAL_CASES
        .iter()
        .filter(|case| case.vm)
        .flat_map(|case| case.files.iter())
        .map(|file| fs::read_to_string(root.join(file)).unwrap())
        .collect();
    for (name, _) in VM_TESTS {
        let text = nix_file(name);
        let mut rest = text.as_str();
        let mut found = 0;
        while let Some(at) = rest.find("./nodes/") {
            let node_file: String = rest[at + 2..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ']')
                .collect();
            assert!(
                cases.iter().any(|case| case.contains(&format!("vm-tests/{node_file}"))),
                "vm-tests/{node_file} (of {name}.nix) is in no --mode vm case of xtask::NIXOS_EVAL_CASES"
            );
            found += 1;
            rest = &rest[at + 8..];
        }
        assert!(found > 0, "{name}.nix imports no ./nodes/ file");
    }
}

#[test]
fn the_labctl_reader_refuses_what_labctl_refuses() {
    // Guards the command check: read from labctl's real sources, the model must refuse
    // unknown subcommands and flags and a missing scenario name, and accept global flags.
    let model = clap_source::read_cli(&repo_root().join("services/labctl/src"), "Cli").unwrap();
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    for refused in [
        "verfiy",
        "verify --no-such-flag",
        "scenario start",
        "scenario launch payment-outage",
        "alerts --report x",
    ] {
        assert!(
            clap_source::check_command(&model, &words(refused)).is_err(),
            "accepted `labctl {refused}`"
        );
    }
    for accepted in [
        "--grafana-url http://x alerts --json",
        "scenario start payment-outage --for 5m --detach --api-url http://x",
        "verify --profile fast --report /tmp/r.json --grafana-password-file f",
    ] {
        clap_source::check_command(&model, &words(accepted))
            .unwrap_or_else(|e| panic!("refused `labctl {accepted}`: {e}"));
    }
}

/// A parameter of a test script as scripts.nix assigns it (`NAME: str = "..."`).
fn script_parameter(script: &str, name: &str) -> String {
    let prefix = format!("{name}: str = ");
    let line = script
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("the script assigns no {name}"));
    serde_json::from_str(&line[prefix.len()..]).unwrap()
}

#[test]
fn the_alloy_test_runs_the_scenario_of_every_loki_rule() {
    // vm-alerts-alloy runs only some of labctl verify's phases: they must fire every rule
    // on Loki, whose lines Alloy ships.
    let rules: Value = serde_json::from_str(
        &fs::read_to_string(repo_root().join("grafana/alert-rules.json")).unwrap(),
    )
    .unwrap();
    let loki_scenarios: BTreeSet<String> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .filter(|r| {
            r["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|q| q["datasourceUid"] == "loki")
        })
        .map(|r| r["labels"]["scenario"].as_str().unwrap().to_owned())
        .collect();
    assert!(!loki_scenarios.is_empty(), "no Loki rule found");
    let phases_flag = script_parameter(&test_script("s.alerts-alloy"), "VERIFY_PHASES");
    let selected: Vec<usize> = phases_flag
        .strip_prefix("--phases ")
        .unwrap_or_else(|| panic!("VERIFY_PHASES is `{phases_flag}`, not --phases N[,N]"))
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    let phases = labctl::verify::default_phases();
    let run: BTreeSet<String> = selected
        .iter()
        .flat_map(|p| phases[p - 1].iter().map(|s| s.name().to_owned()))
        .collect();
    let missing: Vec<&String> = loki_scenarios.difference(&run).collect();
    assert!(
        missing.is_empty(),
        "vm-alerts-alloy's {phases_flag} does not run {missing:?}, scenarios of Loki rules"
    );
    // The Promtail test runs every phase.
    assert_eq!(
        script_parameter(&test_script("s.alerts"), "VERIFY_PHASES"),
        ""
    );
}

#[test]
fn the_hardening_tests_fault_api_address_is_one_the_services_answer() {
    // The one node of vm-hardening as nixos/lib/testing/network.nix sets it up: host name
    // `machine`, 192.168.1.1 and 2001:db8:1::1 on eth1, primaryIPAddress 192.168.1.1 (the
    // `ownAddress` hardening.nix passes). The fault API must answer that address with the
    // token (and refuse other names): it has to be among the module's --admin-allowed-hosts.
    let allowed = eval_json(
        r#"{ root }: (import (root + "/nixos-modules/lib")).adminAllowedHosts {
             hostName = "machine"; listenAddress = "0.0.0.0";
             interfaces.eth1 = {
               ipv4.addresses = [{ address = "192.168.1.1"; prefixLength = 24; }];
               ipv6.addresses = [{ address = "2001:db8:1::1"; prefixLength = 64; }];
             };
           }"#,
    );
    let allowed: Vec<&str> = allowed
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let script = test_script("s.hardening { ownAddress = \"192.168.1.1\"; }");
    let fault_apis = script_parameter(&script, "FAULT_APIS");
    let hosts: Vec<&str> = fault_apis
        .split_whitespace()
        .filter_map(|w| w.trim_matches('\'').split_once("=http://"))
        .map(|(_, rest)| rest.split(':').next().unwrap())
        .collect();
    assert_eq!(hosts.len(), 4, "{fault_apis}");
    for host in hosts {
        assert!(
            allowed.contains(&host),
            "{host} is not in --admin-allowed-hosts {allowed:?}"
        );
    }
}
