//! labctl's command line as its clap derive definitions declare it, read from the source
//! (`services/labctl/src/*.rs`), and a checker for command lines against it.
//!
//! The VM test scripts run labctl inside the VMs; their commands are checked against this
//! model (`tests/vm_tests.rs`), because a binary built from another crate is not available to
//! this crate's tests. The reader understands what clap derive definitions use: `Parser` and
//! `Args` structs (`#[arg(long, short, global = true)]`, fields without `#[arg]` as
//! positionals, `#[command(flatten)]`, `#[command(subcommand)]`) and `Subcommand` enums (unit,
//! tuple and struct variants, `#[command(name = "...")]`). Anything it cannot resolve is an
//! error, never a pass.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

use anyhow::{anyhow, bail, Context, Result};

/// One flag (`--long`, maybe `-s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub long: String,
    pub short: Option<char>,
    /// Takes a value (any type but `bool`).
    pub takes_value: bool,
    /// `global = true`: valid below its command too.
    pub global: bool,
}

/// A command: its flags, positionals and subcommands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandModel {
    pub flags: Vec<Flag>,
    /// Names of the positional arguments, in order, and whether each is required.
    pub positionals: Vec<(String, bool)>,
    /// The last positional takes any number of values (a `Vec`).
    pub repeated_positional: bool,
    pub subcommands: BTreeMap<String, CommandModel>,
    /// Whether a subcommand must be given (a non-`Option` `#[command(subcommand)]` field).
    pub subcommand_required: bool,
    /// Environment variables of its arguments (`env = "..."`), and of all below.
    pub env: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Field {
    attrs: Vec<String>,
    name: String,
    ty: String,
}

#[derive(Debug, Clone)]
enum Item {
    Struct(Vec<Field>),
    Enum {
        subcommand: bool,
        variants: Vec<Variant>,
    },
}

#[derive(Debug, Clone)]
struct Variant {
    attrs: Vec<String>,
    name: String,
    body: VariantBody,
}

#[derive(Debug, Clone)]
enum VariantBody {
    Unit,
    Tuple(String),
    Fields(Vec<Field>),
}

/// Reads every `.rs` file under `dir` and builds the model of the `Parser` struct `root`.
pub fn read_cli(dir: &Path, root: &str) -> Result<CommandModel> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        bail!("no Rust source under {}", dir.display());
    }
    // cli.rs first: where another module has a type of the same name, the command line's wins.
    files.sort_by_key(|p| (p.file_name().is_none_or(|n| n != "cli.rs"), p.clone()));
    let mut items = BTreeMap::new();
    for path in &files {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (name, item) in parse_items(&strip_comments(&text)) {
            items.entry(name).or_insert(item);
        }
    }
    build(&items, root, &mut Vec::new())
}

/// Builds the model of one source text's `Parser` struct `root` (for tests).
pub fn cli_from_source(text: &str, root: &str) -> Result<CommandModel> {
    build(&parse_items(&strip_comments(text)), root, &mut Vec::new())
}

fn build(
    items: &BTreeMap<String, Item>,
    name: &str,
    stack: &mut Vec<String>,
) -> Result<CommandModel> {
    if stack.iter().any(|s| s == name) {
        bail!("recursive clap definition through {name}");
    }
    let Some(Item::Struct(fields)) = items.get(name) else {
        bail!("no struct `{name}` with named fields in labctl's sources");
    };
    stack.push(name.to_string());
    let model = fields_model(items, fields, stack);
    stack.pop();
    model
}

fn fields_model(
    items: &BTreeMap<String, Item>,
    fields: &[Field],
    stack: &mut Vec<String>,
) -> Result<CommandModel> {
    let mut model = CommandModel::default();
    for field in fields {
        let command = attr_args(&field.attrs, "command");
        let arg = attr_args(&field.attrs, "arg");
        if command.iter().any(|a| a == "flatten") {
            let inner = build(items, &base_type(&field.ty), stack)?;
            model.flags.extend(inner.flags);
            model.positionals.extend(inner.positionals);
            model.repeated_positional |= inner.repeated_positional;
            model.env.extend(inner.env);
            if !inner.subcommands.is_empty() {
                model.subcommands.extend(inner.subcommands);
                model.subcommand_required |= inner.subcommand_required;
            }
        } else if command.iter().any(|a| a == "subcommand") {
            let enum_name = base_type(&field.ty);
            model.subcommands = subcommands(items, &enum_name, stack)?;
            model.subcommand_required = !field.ty.trim_start().starts_with("Option<");
            for sub in model.subcommands.values() {
                model.env.extend(sub.env.iter().cloned());
            }
        } else {
            if let Some(env) = key_value(&arg, "env") {
                model.env.insert(env);
            }
            let long = arg.iter().find_map(|a| {
                if a == "long" {
                    Some(kebab(&field.name))
                } else {
                    a.strip_prefix("long")
                        .map(str::trim_start)
                        .and_then(|rest| rest.strip_prefix('='))
                        .map(|v| unquote(v.trim()))
                }
            });
            let short = arg.iter().find_map(|a| {
                if a == "short" {
                    field.name.chars().next()
                } else {
                    a.strip_prefix("short")
                        .map(str::trim_start)
                        .and_then(|rest| rest.strip_prefix('='))
                        .and_then(|v| v.trim().trim_matches('\'').chars().next())
                }
            });
            match long {
                Some(long) => model.flags.push(Flag {
                    long,
                    short,
                    takes_value: field.ty.trim() != "bool",
                    global: key_value(&arg, "global").is_some_and(|v| v == "true"),
                }),
                None => {
                    let repeated = field.ty.trim_start().starts_with("Vec<");
                    let required = key_value(&arg, "required").is_some_and(|v| v == "true")
                        || (!field.ty.trim_start().starts_with("Option<")
                            && !repeated
                            && !arg.iter().any(|a| a.starts_with("default_value")));
                    model.positionals.push((field.name.clone(), required));
                    model.repeated_positional = repeated;
                }
            }
        }
    }
    Ok(model)
}

fn subcommands(
    items: &BTreeMap<String, Item>,
    name: &str,
    stack: &mut Vec<String>,
) -> Result<BTreeMap<String, CommandModel>> {
    let Some(Item::Enum {
        subcommand,
        variants,
    }) = items.get(name)
    else {
        bail!("no enum `{name}` in labctl's sources");
    };
    if !subcommand {
        bail!("enum `{name}` does not derive clap's Subcommand");
    }
    let mut out = BTreeMap::new();
    for variant in variants {
        let command = attr_args(&variant.attrs, "command");
        let name = key_value(&command, "name").unwrap_or_else(|| kebab(&variant.name));
        let model = match &variant.body {
            VariantBody::Unit => CommandModel::default(),
            VariantBody::Tuple(ty) => build(items, &base_type(ty), stack)?,
            VariantBody::Fields(fields) => fields_model(items, fields, stack)?,
        };
        out.insert(name, model);
    }
    Ok(out)
}

/// Checks a labctl command line (the words after `labctl`) against the model.
pub fn check_command(root: &CommandModel, words: &[String]) -> Result<()> {
    let mut node = root;
    let mut path = vec!["labctl".to_string()];
    let mut visible: Vec<&Flag> = root.flags.iter().collect();
    let mut positionals = 0;
    let mut chose_subcommand = false;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if word == "--help" || word == "-h" || word == "--version" || word == "-V" {
            continue;
        }
        if let Some(rest) = word.strip_prefix("--") {
            let (name, inline) = match rest.split_once('=') {
                Some((n, _)) => (n, true),
                None => (rest, false),
            };
            let flag = visible
                .iter()
                .find(|f| f.long == name)
                .ok_or_else(|| anyhow!("`{}` has no flag `--{name}`", path.join(" ")))?;
            if flag.takes_value && !inline {
                if i >= words.len() {
                    bail!("`--{name}` of `{}` needs a value", path.join(" "));
                }
                i += 1;
            }
            continue;
        }
        if let Some(rest) = word.strip_prefix('-').filter(|r| !r.is_empty()) {
            let c = rest.chars().next().unwrap_or('-');
            let flag = visible
                .iter()
                .find(|f| f.short == Some(c))
                .ok_or_else(|| anyhow!("`{}` has no flag `-{c}`", path.join(" ")))?;
            if flag.takes_value && rest.len() == 1 {
                i += 1;
            }
            continue;
        }
        if !node.subcommands.is_empty()
            && !chose_subcommand
            && positionals == node.positionals.len()
        {
            let sub = node.subcommands.get(word.as_str()).ok_or_else(|| {
                anyhow!(
                    "`{}` has no subcommand `{word}` (it has: {})",
                    path.join(" "),
                    node.subcommands
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            // Global flags stay valid below; the others do not.
            visible.retain(|f| f.global);
            node = sub;
            visible.extend(node.flags.iter());
            path.push(word.clone());
            positionals = 0;
            chose_subcommand = node.subcommands.is_empty();
            continue;
        }
        if positionals >= node.positionals.len() {
            if node.repeated_positional && !node.positionals.is_empty() {
                continue;
            }
            bail!("`{}` takes no argument `{word}` here", path.join(" "));
        }
        positionals += 1;
    }
    if node.subcommand_required && !chose_subcommand && !node.subcommands.is_empty() {
        bail!("`{}` needs a subcommand", path.join(" "));
    }
    if let Some((name, _)) = node
        .positionals
        .iter()
        .skip(positionals)
        .find(|(_, required)| *required)
    {
        bail!(
            "`{}` misses its argument {}",
            path.join(" "),
            name.to_uppercase()
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// A small reader of Rust item syntax, enough for clap derive definitions.

/// The source without comments (string-aware, so `"http://..."` stays).
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.extend(&chars[start..i.min(chars.len())]);
        } else if c == '\'' && i + 2 < chars.len() && (chars[i + 2] == '\'' || chars[i + 1] == '\\')
        {
            // A char literal ('x', '\n').
            let start = i;
            i += if chars[i + 1] == '\\' { 4 } else { 3 };
            out.extend(&chars[start..i.min(chars.len())]);
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Splits at top-level `sep`, outside strings and brackets.
fn split_top(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth -= 1,
            _ => {}
        }
        if c == sep && depth == 0 {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The text between the bracket at `open` and its match.
fn bracketed(text: &str, open: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let (o, c) = match bytes[open] {
        b'{' => (b'{', b'}'),
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        _ => return None,
    };
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        if b == b'"' {
            in_string = true;
        } else if b == o {
            depth += 1;
        } else if b == c {
            depth -= 1;
            if depth == 0 {
                return Some((open + 1, i));
            }
        }
    }
    None
}

/// Leading `#[...]` attributes of an element, and the rest.
fn take_attrs(element: &str) -> (Vec<String>, String) {
    let mut attrs = Vec::new();
    let mut rest = element.trim().to_string();
    while rest.starts_with("#[") {
        let Some((start, end)) = bracketed(&rest, 1) else {
            break;
        };
        attrs.push(rest[start..end].trim().to_string());
        rest = rest[end + 1..].trim().to_string();
    }
    (attrs, rest)
}

fn parse_fields(body: &str) -> Vec<Field> {
    split_top(body, ',')
        .into_iter()
        .filter_map(|element| {
            let (attrs, rest) = take_attrs(&element);
            let rest = rest
                .trim_start_matches("pub(crate)")
                .trim_start_matches("pub")
                .trim();
            let (name, ty) = rest.split_once(':')?;
            Some(Field {
                attrs,
                name: name.trim().to_string(),
                ty: ty.trim().to_string(),
            })
        })
        .collect()
}

fn parse_items(text: &str) -> BTreeMap<String, Item> {
    let mut items = BTreeMap::new();
    for keyword in ["struct ", "enum "] {
        let mut from = 0;
        while let Some(found) = text[from..].find(keyword) {
            let at = from + found;
            from = at + keyword.len();
            // A whole word.
            if at > 0
                && text[..at]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                continue;
            }
            let after = &text[from..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                continue;
            }
            let rest = &after[name.len()..];
            let Some(brace) = rest.find(['{', ';', '(']) else {
                continue;
            };
            if rest.as_bytes()[brace] != b'{' {
                continue;
            }
            let open = from + name.len() + brace;
            let Some((start, end)) = bracketed(text, open) else {
                continue;
            };
            let body = &text[start..end];
            let item = if keyword == "struct " {
                Item::Struct(parse_fields(body))
            } else {
                // The derive attribute just before the item.
                let head = &text[..at];
                let derive = head
                    .rfind("#[derive(")
                    .map(|d| &head[d..])
                    .filter(|d| !d.contains('}'))
                    .unwrap_or("");
                let variants = split_top(body, ',')
                    .into_iter()
                    .filter_map(|element| {
                        let (attrs, rest) = take_attrs(&element);
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if name.is_empty() {
                            return None;
                        }
                        let tail = rest[name.len()..].trim();
                        let body = if tail.starts_with('(') {
                            VariantBody::Tuple(
                                tail.trim_start_matches('(')
                                    .trim_end_matches(')')
                                    .trim()
                                    .to_string(),
                            )
                        } else if tail.starts_with('{') {
                            VariantBody::Fields(parse_fields(
                                tail.trim_start_matches('{').trim_end_matches('}'),
                            ))
                        } else {
                            VariantBody::Unit
                        };
                        Some(Variant { attrs, name, body })
                    })
                    .collect();
                Item::Enum {
                    subcommand: derive.contains("Subcommand"),
                    variants,
                }
            };
            items.insert(name, item);
        }
    }
    items
}

/// The comma-separated arguments of every `#[name(...)]` attribute.
fn attr_args(attrs: &[String], name: &str) -> Vec<String> {
    attrs
        .iter()
        .filter_map(|a| {
            let rest = a.strip_prefix(name)?.trim_start();
            if !rest.starts_with('(') {
                return None;
            }
            let (start, end) = bracketed(rest, 0)?;
            Some(split_top(&rest[start..end], ','))
        })
        .flatten()
        .collect()
}

fn key_value(args: &[String], key: &str) -> Option<String> {
    args.iter().find_map(|a| {
        let (k, v) = a.split_once('=')?;
        (k.trim() == key).then(|| unquote(v.trim()))
    })
}

fn unquote(v: &str) -> String {
    v.trim_matches('"').to_string()
}

/// `Option<Vec<Foo>>` → `Foo`.
fn base_type(ty: &str) -> String {
    let mut t = ty.trim();
    while let Some(open) = t.find('<') {
        t = t[open + 1..].trim_end().trim_end_matches('>');
    }
    t.rsplit("::").next().unwrap_or(t).trim().to_string()
}

/// `StopAll` → `stop-all`, `grafana_url` → `grafana-url` (clap's default naming).
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '_' {
            out.push('-');
        } else if c.is_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLI: &str = r#"
        use clap::{Args, Parser, Subcommand};
        /// Top.
        #[derive(Debug, Parser)]
        #[command(name = "tool", version)]
        pub struct Cli {
            #[command(flatten)]
            pub targets: Targets,
            #[command(subcommand)]
            pub command: Command,
        }
        #[derive(Debug, Args)]
        pub struct Targets {
            /// URL, with a "//" inside a string.
            #[arg(long, env = "TOOL_URL", default_value = "http://127.0.0.1:1", global = true)]
            pub base_url: String,
        }
        #[derive(Debug, Subcommand)]
        pub enum Command {
            /// Runs.
            Run(RunArgs),
            #[command(name = "ls")]
            List,
            Group {
                #[command(subcommand)]
                action: Action,
            },
            Many(ManyArgs),
        }
        #[derive(Debug, Args)]
        pub struct ManyArgs {
            #[arg(value_name = "N", required = true)]
            pub names: Vec<String>,
            #[arg(long)]
            pub x: bool,
        }
        #[derive(Debug, Args)]
        pub struct RunArgs {
            #[arg(long = "for", value_name = "D", default_value = "5m")]
            pub duration: String,
            #[arg(long, short)]
            pub json: bool,
            pub name: String,
            pub extra: Option<String>,
        }
        #[derive(Debug, Subcommand)]
        pub enum Action { Start { name: String, #[arg(long)] detach: bool }, StopAll }
    "#;

    fn check(words: &str) -> Result<()> {
        let model = cli_from_source(CLI, "Cli").unwrap();
        let words: Vec<String> = words.split_whitespace().map(String::from).collect();
        check_command(&model, &words)
    }

    #[test]
    fn reads_subcommands_flags_and_environment() {
        let model = cli_from_source(CLI, "Cli").unwrap();
        assert_eq!(
            model.subcommands.keys().collect::<Vec<_>>(),
            ["group", "ls", "many", "run"]
        );
        assert_eq!(
            model.subcommands["group"]
                .subcommands
                .keys()
                .collect::<Vec<_>>(),
            ["start", "stop-all"]
        );
        assert!(model.env.contains("TOOL_URL"));
        let run = &model.subcommands["run"];
        assert_eq!(run.flags[0].long, "for");
        assert_eq!(run.flags[1].short, Some('j'));
        assert!(!run.flags[1].takes_value);
        assert_eq!(
            run.positionals,
            [("name".into(), true), ("extra".into(), false)]
        );
    }

    #[test]
    fn accepts_valid_command_lines() {
        check("run --for 10m -j NAME").unwrap();
        check("--base-url http://x run NAME --base-url=http://y EXTRA").unwrap();
        check("ls").unwrap();
        check("group start NAME --detach --base-url u").unwrap();
        check("group stop-all").unwrap();
        check("many a b --x c").unwrap();
    }

    #[test]
    fn refuses_what_clap_would_refuse() {
        for (words, error) in [
            ("verify", "no subcommand `verify`"),
            ("run --report x NAME", "no flag `--report`"),
            ("run", "misses its argument NAME"),
            ("run a b c", "takes no argument `c`"),
            ("group", "needs a subcommand"),
            ("group stop NAME", "no subcommand `stop`"),
            ("ls --detach", "no flag `--detach`"),
            ("run --for", "needs a value"),
            ("many --x", "misses its argument NAMES"),
        ] {
            let got = check(words).unwrap_err().to_string();
            assert!(got.contains(error), "{words}: {got}");
        }
    }

    #[test]
    fn kebab_case_is_clap_s() {
        assert_eq!(kebab("StopAll"), "stop-all");
        assert_eq!(kebab("grafana_password_file"), "grafana-password-file");
    }
}
