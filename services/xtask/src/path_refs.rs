//! References to repository paths in the repository's own text — comments, docs, strings —
//! and the ones that name nothing. A reference is a word that starts with a top-level
//! directory of the repository (`services/…`, `vm-tests/…`, `nixos-modules/…`) or, in a Nix
//! file, with `./` or `../`; words with placeholders or globs (`<name>`, `*`, `{…}`, `$…`,
//! `…`) are patterns, not paths, and a `:LINE` or `#anchor` suffix is dropped.

use std::{
    fs,
    path::{Component, Path, PathBuf},
};

use anyhow::{Context, Result};

/// Extensions of the files whose text is checked (plus extensionless scripts under `.ci/`
/// and `bench/`).
const TEXT_EXTENSIONS: [&str; 9] = ["rs", "nix", "md", "py", "sh", "toml", "json", "yml", "lua"];
const SKIPPED_DIRS: [&str; 3] = ["target", ".git", "fixtures"];

/// One reference to a path that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dangling {
    pub file: PathBuf,
    pub line: usize,
    pub reference: String,
}

/// The directories at the top of the repository (`services`, `.ci`, ...).
pub fn top_dirs(root: &Path) -> Result<Vec<String>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(root).with_context(|| root.display().to_string())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && !SKIPPED_DIRS.contains(&name.as_str()) {
            dirs.push(name);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | '@' | ':' | '#' | ',')
}

/// The path references in one line of text, cleaned of suffixes.
pub fn references(line: &str, top_dirs: &[String], nix: bool) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let boundary =
            i == 0 || !is_path_char(chars[i - 1]) && chars[i - 1] != '$' && chars[i - 1] != '{';
        if !boundary || !is_path_char(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_path_char(chars[i]) {
            i += 1;
        }
        // A placeholder or glob right after the word makes it a pattern.
        if i < chars.len() && matches!(chars[i], '*' | '<' | '{' | '$' | '…' | '[') {
            continue;
        }
        let word: String = chars[start..i].iter().collect();
        let word = word.split(['#']).next().unwrap_or("");
        // `file.rs:30`, `file.rs:30,52`.
        let word = match word.split_once(':') {
            Some((path, _)) => path,
            None => word,
        };
        let word = word.trim_end_matches([',', '.', ':']);
        if word.contains("...") || !word.contains('/') {
            continue;
        }
        let relative = nix && (word.starts_with("./") || word.starts_with("../"));
        let top = top_dirs.iter().any(|d| {
            word.strip_prefix(d.as_str())
                .is_some_and(|r| r.starts_with('/'))
        });
        if relative || top {
            out.push(word.to_owned());
        }
    }
    out
}

/// `reference` resolved: against `dir` for `./` and `../`, else against `root`; None when it
/// leaves the repository (a sibling like ../shared is not the repository's to check).
fn resolve(root: &Path, dir: &Path, reference: &str) -> Option<PathBuf> {
    let base = if reference.starts_with("./") || reference.starts_with("../") {
        dir
    } else {
        root
    };
    let mut path = base.to_path_buf();
    for component in Path::new(reference).components() {
        match component {
            Component::ParentDir if !path.pop() || !path.starts_with(root) => return None,
            Component::Normal(c) => path.push(c),
            _ => {}
        }
    }
    path.starts_with(root).then_some(path)
}

fn text_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    pending.push(path);
                }
            } else if kind.is_file() {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                let script = ext.is_empty()
                    && (path.starts_with(root.join(".ci")) || path.starts_with(root.join("bench")));
                if TEXT_EXTENSIONS.contains(&ext) || script {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every reference in the repository's text to a path that does not exist.
pub fn dangling(root: &Path) -> Result<(usize, Vec<Dangling>)> {
    let tops = top_dirs(root)?;
    let mut checked = 0;
    let mut out = Vec::new();
    for file in text_files(root)? {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let nix = file.extension().is_some_and(|e| e == "nix");
        let dir = file.parent().unwrap_or(root);
        for (number, line) in text.lines().enumerate() {
            for reference in references(line, &tops, nix) {
                let Some(path) = resolve(root, dir, &reference) else {
                    continue;
                };
                checked += 1;
                if !path.exists() {
                    out.push(Dangling {
                        file: file.strip_prefix(root).unwrap_or(&file).to_path_buf(),
                        line: number + 1,
                        reference,
                    });
                }
            }
        }
    }
    Ok((checked, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tops() -> Vec<String> {
        ["services", "vm-tests", "nixos-modules", ".ci"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn references_are_words_under_top_directories_or_relative_in_nix() {
        let line = "see services/shop-faults/src/api.rs:30,52 and `vm-tests/*.py`, (nixos-modules/eval/vm-lab.nix). ./nodes/lab.nix /var/log/services/x";
        assert_eq!(
            references(line, &tops(), false),
            [
                "services/shop-faults/src/api.rs",
                "nixos-modules/eval/vm-lab.nix"
            ]
        );
        assert_eq!(
            references(line, &tops(), true),
            [
                "services/shop-faults/src/api.rs",
                "nixos-modules/eval/vm-lab.nix",
                "./nodes/lab.nix"
            ]
        );
        for pattern in [
            "services/<name>/src",
            "vm-tests/${name}.nix",
            "services/x/{a,b}.rs",
            "services/…",
            "README.md#vm-tests",
            "${./lib}",
        ] {
            assert!(
                references(pattern, &tops(), true).is_empty(),
                "{pattern}: {:?}",
                references(pattern, &tops(), true)
            );
        }
        assert_eq!(
            references(
                "[bench/README.md](bench/README.md#figures) .ci/run.",
                &["bench".into(), ".ci".into()],
                false
            ),
            ["bench/README.md", "bench/README.md", ".ci/run"]
        );
    }

    #[test]
    fn relative_references_resolve_against_their_file_and_stay_inside() {
        let root = Path::new("/repo");
        assert_eq!(
            resolve(root, Path::new("/repo/vm-tests"), "./nodes/lab.nix"),
            Some(PathBuf::from("/repo/vm-tests/nodes/lab.nix"))
        );
        assert_eq!(
            resolve(
                root,
                Path::new("/repo/nixos-modules/eval"),
                "../../vm-tests/x.nix"
            ),
            Some(PathBuf::from("/repo/vm-tests/x.nix"))
        );
        assert_eq!(
            resolve(
                root,
                Path::new("/repo/services/xtask"),
                "../../../shared/tools"
            ),
            None
        );
        assert_eq!(
            resolve(root, Path::new("/repo/x"), "services/labctl"),
            Some(PathBuf::from("/repo/services/labctl"))
        );
    }
}
